"""A retried post finds the message an earlier attempt posted, by its marker.

A crash between `chat.postMessage` and the commit that stores the message's ts
is played by deleting the stored row after a real delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from slack_support import ROUTED_TICKET
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from chatops.notifier import SlackNotifier
from chatops.permissions import load_role_map
from chatops.posted import MARKER_EVENT_TYPE
from chatops.settings import SlackSettings
from chatops.store import find_message
from router.mapping import MappingSet
from router.sandbox.slack import FakeSlack, direct_message_id
from router.store.models import slack_messages

ROUTED_KEY = f"servicenow:{ROUTED_TICKET}"
MARKER = "opsroute:notify:7:1"


@dataclass(frozen=True)
class Action:
    """An outbox action with the attributes `deliver` reads."""

    payload: dict[str, Any] = field(default_factory=dict)
    marker: str = MARKER
    first_attempt: bool = True
    id: int = 7
    system: str = "slack"
    instance: str = "default"
    kind: str = "notification"
    record_id: str | None = None

    @property
    def ticket_key(self) -> str:
        return str(self.payload.get("ticket_key") or "none")


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
        "candidates": [],
        "context": {},
        "escalation": {"policy": "p1-default", "level": 1, "sla_due_at": None},
        "link": None,
    }
    return payload | changes


def _lose_stored_ts(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.execute(delete(slack_messages))


def _retry(action: Action) -> Action:
    return Action(payload=action.payload, marker=action.marker, first_attempt=False)


def test_post_carries_marker_metadata(
    notifier: SlackNotifier, fake_slack: FakeSlack
) -> None:
    notifier.deliver(Action(payload=_payload()))

    (posted,) = fake_slack.method_calls("chat.postMessage")
    assert posted["metadata"]["event_type"] == MARKER_EVENT_TYPE
    assert posted["metadata"]["event_payload"]["marker"] == MARKER
    assert posted["metadata"]["event_payload"]["ticket_key"] == ROUTED_KEY


def test_first_attempt_searches_no_history(
    notifier: SlackNotifier, fake_slack: FakeSlack
) -> None:
    notifier.deliver(Action(payload=_payload()))

    assert fake_slack.method_calls("conversations.history") == []
    assert fake_slack.method_calls("conversations.list") == []


def test_retry_after_lost_ts_posts_once(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    action = Action(payload=_payload())
    first = notifier.deliver(action)
    _lose_stored_ts(sessions)

    again = notifier.deliver(_retry(action))

    (history,) = fake_slack.method_calls("conversations.history")
    with sessions() as session:
        message = find_message(session, ticket_key=ROUTED_KEY, kind="escalation")
    assert len(fake_slack.method_calls("chat.postMessage")) == 1
    assert history["channel"] == "C0ESCALATE"
    assert again.marker_found is True
    assert again.details["ts"] == first.details["ts"]
    assert message is not None
    assert message.ts == first.details["ts"]
    assert message.channel == "C0ESCALATE"


def test_update_after_recovery_edits_message(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    action = Action(payload=_payload())
    first = notifier.deliver(action)
    _lose_stored_ts(sessions)
    notifier.deliver(_retry(action))

    level_two = _payload(escalation=_payload()["escalation"] | {"level": 2})
    notifier.deliver(Action(payload=level_two, marker="opsroute:notify:7:2"))

    (updated,) = fake_slack.method_calls("chat.update")
    assert updated["ts"] == first.details["ts"]
    assert len(fake_slack.method_calls("chat.postMessage")) == 1


def test_retry_without_earlier_post_posts(
    notifier: SlackNotifier, fake_slack: FakeSlack
) -> None:
    result = notifier.deliver(Action(payload=_payload(), first_attempt=False))

    assert result.marker_found is False
    assert len(fake_slack.method_calls("conversations.history")) == 1
    assert len(fake_slack.method_calls("chat.postMessage")) == 1


def test_other_marker_is_not_a_match(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    notifier.deliver(Action(payload=_payload(), marker="opsroute:notify:6:1"))
    _lose_stored_ts(sessions)

    result = notifier.deliver(Action(payload=_payload(), first_attempt=False))

    assert result.marker_found is False
    assert len(fake_slack.method_calls("chat.postMessage")) == 2


def test_rejected_search_posts_again(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    payload = _payload(target="channel:C0ESCALATE")
    notifier.deliver(Action(payload=payload))
    _lose_stored_ts(sessions)
    # The next request is the history search, because the target is an id.
    fake_slack.fail_next(200, document={"ok": False, "error": "missing_scope"})

    result = notifier.deliver(Action(payload=payload, first_attempt=False))

    assert result.marker_found is False
    assert len(fake_slack.method_calls("conversations.history")) == 1
    assert len(fake_slack.method_calls("chat.postMessage")) == 2


def test_direct_message_retry_finds_marker(
    notifier: SlackNotifier, fake_slack: FakeSlack, sessions: sessionmaker[Session]
) -> None:
    fake_slack.add_user("U0AM", name="Alan Turing", email="alan@example.com")
    action = Action(payload=_payload(target="account_manager:alan@example.com"))
    notifier.deliver(action)
    _lose_stored_ts(sessions)

    again = notifier.deliver(_retry(action))

    (opened,) = fake_slack.method_calls("conversations.open")
    assert opened["users"] == "U0AM"
    assert again.marker_found is True
    assert again.details["channel"] == direct_message_id("U0AM")
    assert len(fake_slack.method_calls("chat.postMessage")) == 1


def test_ticketless_retry_posts_once(
    notifier: SlackNotifier, fake_slack: FakeSlack
) -> None:
    action = Action(payload=_payload(ticket_key=None, notification_type="drift"))
    notifier.deliver(action)

    again = notifier.deliver(_retry(action))

    assert again.marker_found is True
    assert len(fake_slack.method_calls("chat.postMessage")) == 1
