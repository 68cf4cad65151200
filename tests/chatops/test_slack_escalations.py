"""Acknowledge and Escalate, with and without the escalation engine installed."""

from __future__ import annotations

import importlib.util

import pytest
from slack_support import RESPONDER, ROUTED_TICKET, SlackAppServer, wait_for
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chatops.escalations import ENGINE_MODULE
from chatops.messages import ACTION_ACK, ACTION_ESCALATE
from router.sandbox.slack import FakeSlack
from router.store.models import outbox_actions

ROUTED_KEY = f"servicenow:{ROUTED_TICKET}"


def _engine_installed() -> bool:
    try:
        return importlib.util.find_spec(ENGINE_MODULE) is not None
    except ModuleNotFoundError:
        return False


def _outbox_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return len(session.execute(select(outbox_actions.c.id)).all())


@pytest.mark.skipif(_engine_installed(), reason="the escalation engine is installed")
@pytest.mark.parametrize("action_id", [ACTION_ACK, ACTION_ESCALATE])
def test_missing_engine_gets_clear_reply(
    action_id: str,
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    slack_server.click(
        action_id, ROUTED_KEY, user_id=RESPONDER, response_url=fake_slack.response_url()
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    assert fake_slack.replies()[0]["text"].startswith("Escalations are not available")
    assert _outbox_count(sessions) == 0


def test_ack_without_escalation_changes_nothing(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    pytest.importorskip(ENGINE_MODULE)

    slack_server.command(
        f"ack {ROUTED_TICKET}",
        user_id=RESPONDER,
        response_url=fake_slack.response_url(),
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    assert fake_slack.replies()[0]["text"] == (
        f"{ROUTED_TICKET} has no open escalation to acknowledge."
    )
    assert _outbox_count(sessions) == 0


def test_escalate_queues_note(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    sessions: sessionmaker[Session],
) -> None:
    pytest.importorskip(ENGINE_MODULE)

    slack_server.command(
        f"escalate {ROUTED_TICKET} customer is down",
        user_id=RESPONDER,
        response_url=fake_slack.response_url(),
    )

    assert wait_for(lambda: len(fake_slack.replies()) == 1)
    reply = fake_slack.replies()[0]["text"]
    assert reply.startswith(f"Escalated {ROUTED_TICKET} to level")
    with sessions() as session:
        kinds = dict(
            session.execute(
                select(outbox_actions.c.kind, outbox_actions.c.payload)
            ).all()
        )
    # The note goes to the ticket's system; the engine notifies the next level.
    assert sorted(kinds) == ["notification", "write_back"]
    payload = kinds["write_back"]
    assert "group" not in payload
    assert payload["reason"].endswith(": customer is down")
    assert kinds["notification"]["notification_type"] == "escalation"
