"""The `slack` notifier: escalation and review messages, posted once, then updated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_support import (
    RESPONDER,
    REVIEW_TICKET,
    ROUTED_TICKET,
    SlackAppServer,
    wait_for,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chatops.messages import ACTION_ACK, ACTION_REASSIGN, ACTION_REVIEW_APPROVE
from chatops.notifier import SlackNotifier, create_notifier
from chatops.permissions import load_role_map
from chatops.settings import SlackSettings
from chatops.store import find_message
from router.intake.plugin import PermanentDeliveryError, RetryableDeliveryError
from router.mapping import MappingSet
from router.sandbox.slack import FakeSlack
from router.service.actions import review_notification_action
from router.service.dispatcher import BackoffPolicy, OutboxDispatcher
from router.store.models import outbox_actions
from router.store.outbox import NewOutboxAction, enqueue_actions, get_action
from router.store.service import find_ticket, latest_decision

ROUTED_KEY = f"servicenow:{ROUTED_TICKET}"
NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def _payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "notification_type": "escalation",
        "target": "channel:#opsroute-escalations",
        "reason": "P1 ticket unacknowledged for 15 minutes",
        "ticket_key": ROUTED_KEY,
        "title": "NameNode out of heap",
        "priority": 1,
        "resolver_group": "HDFS",
        "confidence": 0.93,
        "candidates": [{"group": "HDFS", "score": 0.93}],
        "context": {"account_tier": "gold", "arr": 120000},
        "escalation": {
            "policy": "p1-default",
            "level": 1,
            "sla_due_at": (NOW + timedelta(hours=1, minutes=5)).isoformat(),
        },
        "link": "https://example.service-now.com/incident.do?sys_id=4f1c",
    }
    return payload | changes


@pytest.fixture
def notifier(
    slack_settings: SlackSettings,
    sessions: sessionmaker[Session],
    mappings: MappingSet,
) -> SlackNotifier:
    return SlackNotifier(
        settings=slack_settings,
        session_factory=sessions,
        groups=mappings.taxonomy.group_names,
        role_map=load_role_map(slack_settings.roles_file),
        clock=lambda: NOW,
    )


def _deliver(
    notifier: SlackNotifier,
    sessions: sessionmaker[Session],
    payload: dict[str, Any],
    marker: str,
) -> dict[str, Any]:
    """Queue a notification and deliver it through the real dispatcher."""
    with sessions.begin() as session:
        (action_id,) = enqueue_actions(
            session,
            actions=[
                NewOutboxAction(
                    system="slack",
                    instance="default",
                    kind="notification",
                    ticket_key=str(payload.get("ticket_key") or "none"),
                    record_id=None,
                    payload=payload,
                    marker=marker,
                    decision_id=None,
                )
            ],
        )
    dispatcher = OutboxDispatcher(
        session_factory=sessions,
        connectors={("slack", "default"): notifier},
        worker_id="test-dispatcher",
        backoff=BackoffPolicy(),
    )
    dispatcher.dispatch_once()
    with sessions() as session:
        action = get_action(session, action_id=action_id)
    return {"status": action.status, "error": action.last_error}


def _elements(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        element["action_id"]
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def test_escalation_posts_message_with_buttons(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    outcome = _deliver(notifier, sessions, _payload(), "opsroute:notify:1:1")

    assert outcome["status"] == "done"
    (posted,) = fake_slack.method_calls("chat.postMessage")
    assert posted["channel"] == "#opsroute-escalations"
    assert posted["text"] == f"Escalation: {ROUTED_TICKET} NameNode out of heap"
    assert _elements(posted["blocks"]) == [
        "opsroute_ack",
        "opsroute_reassign",
        "opsroute_escalate",
        "opsroute_why",
    ]
    rendered = str(posted["blocks"])
    assert "<https://example.service-now.com/incident.do?sys_id=4f1c|INC0012345>" in (
        rendered
    )
    assert "*SLA*\\n1h 05m left" in rendered
    assert "*Priority*\\nP1" in rendered
    assert "*Account tier*\\ngold" in rendered
    assert "*Confidence*\\n0.93" in rendered
    # Channel members see only the fields a viewer may see.
    assert "arr" not in rendered


def test_message_ts_is_stored(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    _deliver(notifier, sessions, _payload(), "opsroute:notify:1:1")

    with sessions() as session:
        message = find_message(session, ticket_key=ROUTED_KEY, kind="escalation")
    assert message is not None
    assert message.channel == "C0ESCALATE"
    assert (message.channel, message.ts) in fake_slack.messages


def test_next_level_updates_in_place(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    _deliver(notifier, sessions, _payload(), "opsroute:notify:1:1")
    escalation = _payload()["escalation"] | {"level": 2}
    _deliver(notifier, sessions, _payload(escalation=escalation), "opsroute:notify:1:2")

    assert len(fake_slack.method_calls("chat.postMessage")) == 1
    (updated,) = fake_slack.method_calls("chat.update")
    with sessions() as session:
        message = find_message(session, ticket_key=ROUTED_KEY, kind="escalation")
    assert message is not None
    assert updated["channel"] == message.channel
    assert updated["ts"] == message.ts
    assert "p1-default level 2" in str(updated["blocks"])


def test_resolution_from_itsm_removes_buttons(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    _deliver(notifier, sessions, _payload(), "opsroute:notify:1:1")
    resolved = _payload(
        notification_type="info",
        escalation=_payload()["escalation"] | {"status": "resolved"},
    )
    _deliver(notifier, sessions, resolved, "opsroute:notify:1:resolved")

    (updated,) = fake_slack.method_calls("chat.update")
    assert _elements(updated["blocks"]) == []
    assert "Resolved" in str(updated["blocks"])


def test_acknowledgement_from_itsm_shows_name(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    _deliver(notifier, sessions, _payload(), "opsroute:notify:1:1")
    acknowledged = _payload(
        notification_type="info",
        escalation=_payload()["escalation"]
        | {"status": "acknowledged", "acknowledged_by": "servicenow:beth"},
    )
    _deliver(notifier, sessions, acknowledged, "opsroute:notify:1:ack")

    (updated,) = fake_slack.method_calls("chat.update")
    assert "Acknowledged by servicenow:beth" in str(updated["blocks"])
    assert ACTION_ACK in _elements(updated["blocks"])


def test_review_posts_candidates_and_approve(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    payload = _payload(
        notification_type="review",
        target="group:reviewers",
        ticket_key=f"servicenow:{REVIEW_TICKET}",
        title="Query hangs on the warehouse",
        resolver_group="HIVE",
        confidence=0.41,
        candidates=[
            {"group": "HIVE", "score": 0.41},
            {"group": "IMPALA", "score": 0.3},
        ],
        escalation=None,
    )

    _deliver(notifier, sessions, payload, "opsroute:notify:2:1")

    (posted,) = fake_slack.method_calls("chat.postMessage")
    assert posted["channel"] == "#opsroute-review"
    rendered = str(posted["blocks"])
    assert "1. HIVE (0.41)" in rendered
    assert "2. IMPALA (0.30)" in rendered
    assert _elements(posted["blocks"]) == [
        ACTION_REVIEW_APPROVE,
        "opsroute_review_pick",
    ]


def test_user_target_is_looked_up_by_email(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    fake_slack.add_user("U0AM", name="Alan Turing", email="alan@example.com")

    _deliver(
        notifier,
        sessions,
        _payload(target="account_manager:alan@example.com"),
        "opsroute:notify:1:1",
    )

    assert fake_slack.method_calls("users.lookupByEmail") == [
        {"email": "alan@example.com"}
    ]
    assert fake_slack.method_calls("chat.postMessage")[0]["channel"] == "U0AM"


def test_rate_limit_is_retryable(
    notifier: SlackNotifier, fake_slack: FakeSlack
) -> None:
    fake_slack.fail_next(
        429,
        document={"ok": False, "error": "ratelimited"},
        headers={"Retry-After": "7"},
    )
    action = _Action(payload=_payload())

    with pytest.raises(RetryableDeliveryError) as raised:
        notifier.deliver(action)

    assert raised.value.retry_after == 7.0


def test_unknown_channel_is_permanent(notifier: SlackNotifier) -> None:
    action = _Action(payload=_payload(target="channel:#no-such-channel"))

    with pytest.raises(PermanentDeliveryError) as raised:
        notifier.deliver(action)

    assert "channel_not_found" in str(raised.value)


def test_invalid_target_is_permanent(notifier: SlackNotifier) -> None:
    action = _Action(payload=_payload(target="pager:42"))

    with pytest.raises(PermanentDeliveryError) as raised:
        notifier.deliver(action)

    assert "Notification target 'pager:42' is invalid" in str(raised.value)


def test_repr_hides_token(notifier: SlackNotifier) -> None:
    assert "xoxb" not in repr(notifier)
    assert "xoxb" not in repr(notifier.settings)


def test_factory_reads_environment(
    monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, tmp_path: Any
) -> None:
    monkeypatch.setenv("OPSROUTE_SLACK_BOT_TOKEN", "xoxb-from-env")
    monkeypatch.setenv("OPSROUTE_DATABASE_URL", f"sqlite:///{tmp_path / 'n.db'}")

    created = create_notifier()

    assert created.system == "slack"
    assert created.instance == "default"
    assert created.can_write() is True
    assert created.webhook_secret_setting() is None
    assert created.missing_settings() == []


def test_click_updates_posted_message(
    notifier: SlackNotifier,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
    slack_server: SlackAppServer,
) -> None:
    _deliver(notifier, sessions, _payload(), "opsroute:notify:1:1")
    with sessions() as session:
        message = find_message(session, ticket_key=ROUTED_KEY, kind="escalation")
    assert message is not None

    slack_server.click(
        ACTION_REASSIGN,
        f"{ROUTED_KEY}|HIVE",
        user_id=RESPONDER,
        response_url=fake_slack.response_url(),
        message_ts=message.ts,
        select=True,
    )

    assert wait_for(lambda: len(fake_slack.method_calls("chat.update")) == 1)
    (updated,) = fake_slack.method_calls("chat.update")
    assert updated["ts"] == message.ts
    assert "Reassigned to HIVE by Ada Lovelace" in str(updated["blocks"])
    assert "*Resolver group*\\nHIVE" in str(updated["blocks"])
    with sessions() as session:
        kinds = session.execute(select(outbox_actions.c.kind)).scalars().all()
    assert sorted(kinds) == ["notification", "write_back"]


class _Action:
    """An outbox action as `deliver` reads it, for calls outside the dispatcher."""

    def __init__(self, *, payload: dict[str, Any]) -> None:
        self.id = 1
        self.system = "slack"
        self.instance = "default"
        self.kind = "notification"
        self.ticket_key = str(payload.get("ticket_key"))
        self.record_id = None
        self.payload = payload
        self.marker = "opsroute:notify:test:1"
        self.first_attempt = True


def test_review_decision_posts_to_review_channel(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:
        ticket = find_ticket(session, ref=REVIEW_TICKET)
        decision = latest_decision(session, ticket_id=ticket.id)
    assert decision is not None
    action = review_notification_action(
        ticket=ticket.to_ticket(),
        decision=decision.to_decision(),
        decision_id=decision.id,
    )
    assert action is not None

    outcome = _deliver(notifier, sessions, action.payload, action.marker)

    assert outcome["status"] == "done"
    (posted,) = fake_slack.method_calls("chat.postMessage")
    assert posted["channel"] == "#opsroute-review"
    assert "Approve HIVE" in str(posted["blocks"])
    assert "2. HADOOP (0.59)" in str(posted["blocks"])
