"""Ticket changes made in the ITSM tool update the ticket's Slack messages in place.

The events go through the real inbox worker (planning and storing), and the queued
`info` notifications through the real dispatcher and the `slack` notifier.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from slack_support import BOT_TOKEN, REVIEW_TICKET, ROUTED_TICKET
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chatops.messages import ACTION_ACK
from chatops.notifier import SlackNotifier
from chatops.permissions import load_role_map
from chatops.settings import SlackSettings
from chatops.store import find_message
from router.classification.model import RoutingModel
from router.intake.plugin import Connector
from router.mapping import MappingSet
from router.routing import TicketRouter
from router.sandbox.slack import FakeSlack
from router.service.dispatcher import BackoffPolicy, OutboxDispatcher
from router.service.worker import InboxWorker
from router.store.inbox import NewInboxEvent, insert_inbox_events
from router.store.models import outbox_actions
from router.store.outbox import NewOutboxAction, enqueue_actions
from tests.service.support import incident, servicenow_connector, train_small_model

ROUTED_KEY = f"servicenow:{ROUTED_TICKET}"
ROUTED_SYS_ID = "4f1c2e3d5a6b7c8d9e0f1a2b3c4d5e6f"


@pytest.fixture(scope="module")
def small_model() -> RoutingModel:
    return train_small_model()


@pytest.fixture
def notifier(
    slack_settings: SlackSettings, sessions: sessionmaker[Session], mappings: MappingSet
) -> SlackNotifier:
    return SlackNotifier(
        settings=slack_settings,
        session_factory=sessions,
        groups=mappings.taxonomy.group_names,
        role_map=load_role_map(slack_settings.roles_file),
    )


@pytest.fixture
def worker(
    sessions: sessionmaker[Session], mappings: MappingSet, small_model: RoutingModel
) -> InboxWorker:
    connectors: dict[tuple[str, str], Connector] = {
        ("servicenow", "default"): servicenow_connector(mappings=mappings)
    }
    return InboxWorker(
        session_factory=sessions,
        connectors=connectors,
        mappings=mappings,
        router=TicketRouter(model=small_model, mappings=mappings),
        worker_id="test-worker",
    )


@pytest.fixture(autouse=True)
def _bot_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSROUTE_SLACK_BOT_TOKEN", BOT_TOKEN)


def _dispatch(notifier: SlackNotifier, sessions: sessionmaker[Session]) -> None:
    dispatcher = OutboxDispatcher(
        session_factory=sessions,
        connectors={("slack", "default"): notifier},
        worker_id="test-dispatcher",
        backoff=BackoffPolicy(),
    )
    dispatcher.dispatch_once()


def _post_escalation(notifier: SlackNotifier, sessions: sessionmaker[Session]) -> None:
    payload = {
        "notification_type": "escalation",
        "target": "channel:#opsroute-escalations",
        "reason": "P1 ticket unacknowledged for 15 minutes",
        "ticket_key": ROUTED_KEY,
        "title": "NameNode out of heap",
        "priority": 1,
        "resolver_group": "HDFS",
        "confidence": 0.93,
        "candidates": [],
        "context": {},
        "escalation": {"policy": "p1-default", "level": 1, "sla_due_at": None},
        "link": None,
    }
    with sessions.begin() as session:
        enqueue_actions(
            session,
            actions=[
                NewOutboxAction(
                    system="slack",
                    instance="default",
                    kind="notification",
                    ticket_key=ROUTED_KEY,
                    record_id=None,
                    payload=payload,
                    marker="opsroute:notify:1:1",
                    decision_id=None,
                )
            ],
        )
    _dispatch(notifier, sessions)


def _itsm_update(
    sessions: sessionmaker[Session],
    *,
    group: str,
    state: str,
    version: int,
    number: str = ROUTED_TICKET,
    sys_id: str = ROUTED_SYS_ID,
) -> None:
    """Store a ServiceNow update of the ticket made by the agent "beth"."""
    record = incident(1) | dict(
        sys_id=sys_id,
        number=number,
        assignment_group_name=group,
        state=state,
        sys_updated_by="beth",
        sys_mod_count=str(version),
        sys_updated_on=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    )
    event = NewInboxEvent(
        system="servicenow",
        instance="default",
        delivery_id=None,
        record_key=sys_id,
        record_version=str(version),
        event_type="update",
        record=record,
        headers={},
        received_at=datetime.now(UTC),
    )
    with sessions.begin() as session:
        insert_inbox_events(session, events=[event])


def _notifications(sessions: sessionmaker[Session]) -> list[Any]:
    with sessions() as session:
        return list(
            session.execute(
                select(outbox_actions)
                .where(outbox_actions.c.kind == "notification")
                .order_by(outbox_actions.c.id)
            ).all()
        )


def _action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        element["action_id"]
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def test_itsm_reassignment_updates_message(
    worker: InboxWorker,
    notifier: SlackNotifier,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    _post_escalation(notifier, sessions)
    _itsm_update(sessions, group="HBASE", state="2", version=3)

    outcome = worker.process_batch()
    _dispatch(notifier, sessions)

    info = _notifications(sessions)[-1]
    assert outcome.skipped == 1
    assert info.payload["notification_type"] == "info"
    assert info.payload["change"]["group"] == "HBASE"
    assert info.payload["change"]["changed_by"] == "servicenow:beth"
    assert info.status == "done"
    assert len(fake_slack.method_calls("chat.postMessage")) == 1
    (updated,) = fake_slack.method_calls("chat.update")
    rendered = str(updated["blocks"])
    assert "Reassigned to HBASE by servicenow:beth" in rendered
    assert "State: In Progress" in rendered
    assert ACTION_ACK in _action_ids(updated["blocks"])


def test_itsm_resolution_removes_buttons(
    worker: InboxWorker,
    notifier: SlackNotifier,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    _post_escalation(notifier, sessions)
    _itsm_update(sessions, group="HDFS", state="6", version=3)

    worker.process_batch()
    _dispatch(notifier, sessions)

    (updated,) = fake_slack.method_calls("chat.update")
    assert _action_ids(updated["blocks"]) == []
    assert "Resolved" in str(updated["blocks"])
    assert "Reassigned" not in str(updated["blocks"])
    with sessions() as session:
        message = find_message(session, ticket_key=ROUTED_KEY, kind="escalation")
    assert message is not None
    assert message.state["ticket_state"] == "Resolved"


def test_reopened_ticket_gets_buttons_back(
    worker: InboxWorker,
    notifier: SlackNotifier,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    _post_escalation(notifier, sessions)
    _itsm_update(sessions, group="HDFS", state="6", version=3)
    worker.process_batch()
    _dispatch(notifier, sessions)

    _itsm_update(sessions, group="HDFS", state="2", version=4)
    worker.process_batch()
    _dispatch(notifier, sessions)

    resolved, reopened = fake_slack.method_calls("chat.update")
    assert _action_ids(resolved["blocks"]) == []
    assert ACTION_ACK in _action_ids(reopened["blocks"])
    assert "State: In Progress" in str(reopened["blocks"])


def test_unchanged_ticket_queues_no_update(
    worker: InboxWorker,
    notifier: SlackNotifier,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    _post_escalation(notifier, sessions)
    _itsm_update(sessions, group="HBASE", state="2", version=3)
    worker.process_batch()
    _dispatch(notifier, sessions)

    _itsm_update(sessions, group="HBASE", state="2", version=4)
    worker.process_batch()

    infos = [row for row in _notifications(sessions) if row.payload.get("change")]
    assert len(infos) == 1
    assert len(fake_slack.method_calls("chat.update")) == 1


def test_ticket_without_message_queues_nothing(
    worker: InboxWorker, sessions: sessionmaker[Session]
) -> None:
    _itsm_update(
        sessions,
        group="HBASE",
        state="6",
        version=3,
        number=REVIEW_TICKET,
        sys_id="5f1c2e3d5a6b7c8d9e0f1a2b3c4d5e6f",
    )

    outcome = worker.process_batch()

    assert outcome.skipped == 1
    assert _notifications(sessions) == []


def test_no_bot_token_queues_nothing(
    worker: InboxWorker,
    notifier: SlackNotifier,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _post_escalation(notifier, sessions)
    monkeypatch.delenv("OPSROUTE_SLACK_BOT_TOKEN")
    _itsm_update(sessions, group="HBASE", state="6", version=3)

    outcome = worker.process_batch()

    assert outcome.skipped == 1
    assert outcome.actions == 0
    assert len(_notifications(sessions)) == 1


def test_redelivered_event_queues_one_update(
    worker: InboxWorker,
    notifier: SlackNotifier,
    sessions: sessionmaker[Session],
) -> None:
    _post_escalation(notifier, sessions)
    _itsm_update(sessions, group="HBASE", state="2", version=3)
    _itsm_update(sessions, group="HBASE", state="2", version=3)

    worker.process_batch()

    infos = [row for row in _notifications(sessions) if row.payload.get("change")]
    assert len(infos) == 1


def _queue(
    sessions: sessionmaker[Session], payload: dict[str, Any], marker: str
) -> None:
    with sessions.begin() as session:
        enqueue_actions(
            session,
            actions=[
                NewOutboxAction(
                    system="slack",
                    instance="default",
                    kind="notification",
                    ticket_key=str(payload["ticket_key"]),
                    record_id=None,
                    payload=payload,
                    marker=marker,
                    decision_id=None,
                )
            ],
        )


def _info(ticket_key: str, **change: Any) -> dict[str, Any]:
    return {
        "notification_type": "info",
        "target": "channel:C0REVIEW",
        "reason": "changed in ServiceNow",
        "ticket_key": ticket_key,
        "title": None,
        "priority": None,
        "resolver_group": change.get("group"),
        "confidence": None,
        "candidates": [],
        "context": {},
        "escalation": None,
        "link": None,
        "change": {"state": None, "resolved": False, "changed_by": "servicenow:beth"}
        | change,
    }


def test_info_updates_review_message(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    review_key = f"servicenow:{REVIEW_TICKET}"
    review = _info(review_key) | {
        "notification_type": "review",
        "target": "group:reviewers",
        "resolver_group": "HIVE",
        "candidates": [{"group": "HIVE", "score": 0.41}],
    }
    _queue(sessions, review, "opsroute:notify:2:review")
    _dispatch(notifier, sessions)

    _queue(sessions, _info(review_key, group="IMPALA"), "opsroute:notify:x:info")
    _dispatch(notifier, sessions)

    (posted,) = fake_slack.method_calls("chat.postMessage")
    (updated,) = fake_slack.method_calls("chat.update")
    rendered = str(updated["blocks"])
    assert posted["channel"] == "#opsroute-review"
    assert updated["channel"] == "C0REVIEW"
    assert "Reassigned to IMPALA by servicenow:beth" in rendered
    assert "*Suggested:* HIVE" in rendered


def test_info_without_message_posts_nothing(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    _queue(sessions, _info(ROUTED_KEY, group="HBASE"), "opsroute:notify:y:info")

    _dispatch(notifier, sessions)

    (action,) = _notifications(sessions)
    assert action.status == "done"
    assert action.result["updated"] == 0
    assert fake_slack.method_calls("chat.postMessage") == []
    assert fake_slack.method_calls("chat.update") == []


def test_policy_info_without_change_posts(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    fake_slack.add_user("U0AM", name="Alan Turing", email="alan@example.com")
    payload = _info(ROUTED_KEY) | {"target": "account_manager:alan@example.com"}
    del payload["change"]
    _queue(sessions, payload, "opsroute:notify:5:1")

    _dispatch(notifier, sessions)

    (posted,) = fake_slack.method_calls("chat.postMessage")
    assert posted["channel"] == "U0AM"
