"""The three-second rule: a click is acknowledged while the ITSM write takes 5 s."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from slack_support import RESPONDER, ROUTED_TICKET, SlackAppServer, wait_for
from sqlalchemy.orm import Session, sessionmaker

from chatops.messages import ACTION_REASSIGN
from connectors.servicenow import ServiceNowConnector
from connectors.settings import ServiceNowSettings
from router.mapping import MappingSet
from router.sandbox.server import FakeResponse, RecordedCall
from router.sandbox.servicenow import FakeServiceNow
from router.sandbox.slack import FakeSlack
from router.service.dispatcher import BackoffPolicy, OutboxDispatcher
from router.store.outbox import list_actions

ITSM_DELAY_SECONDS = 5.0
ACK_LIMIT_SECONDS = 3.0
SYS_ID = "4f1c2e3d5a6b7c8d9e0f1a2b3c4d5e6f"


class SlowServiceNow(FakeServiceNow):
    """A ServiceNow fake that responds to each write after a delay."""

    def handle(self, call: RecordedCall) -> FakeResponse:
        if call.method in ("PUT", "PATCH"):
            time.sleep(ITSM_DELAY_SECONDS)
        return super().handle(call)


@pytest.fixture
def slow_servicenow() -> Iterator[SlowServiceNow]:
    with SlowServiceNow(lifetime_seconds=60) as fake:
        fake.add_record(
            "incident",
            {"sys_id": SYS_ID, "number": ROUTED_TICKET, "assignment_group": ""},
        )
        yield fake


@pytest.fixture
def dispatcher(
    slow_servicenow: SlowServiceNow,
    sessions: sessionmaker[Session],
    mappings: MappingSet,
) -> Iterator[OutboxDispatcher]:
    connector = ServiceNowConnector(
        mappings=mappings,
        settings=ServiceNowSettings(
            instance=slow_servicenow.url,
            user=slow_servicenow.user,
            password=SecretStr(slow_servicenow.password),
            timeout_seconds=15,
        ),
    )
    running = OutboxDispatcher(
        session_factory=sessions,
        connectors={("servicenow", "default"): connector},
        worker_id="test-dispatcher",
        backoff=BackoffPolicy(),
        poll_seconds=0.05,
    )
    running.start()
    yield running
    running.stop()


def test_click_ack_beats_slow_write_back(
    slack_server: SlackAppServer,
    fake_slack: FakeSlack,
    slow_servicenow: SlowServiceNow,
    dispatcher: OutboxDispatcher,
    sessions: sessionmaker[Session],
) -> None:
    group_id = slow_servicenow.add_group("Hive Platform")

    started = time.monotonic()
    response = slack_server.click(
        ACTION_REASSIGN,
        f"servicenow:{ROUTED_TICKET}|HIVE",
        user_id=RESPONDER,
        response_url=fake_slack.response_url(),
        select=True,
    )
    ack_seconds = time.monotonic() - started

    assert response.status_code == 200
    assert ack_seconds < ACK_LIMIT_SECONDS
    assert wait_for(lambda: len(fake_slack.replies()) == 1, timeout=ACK_LIMIT_SECONDS)
    assert wait_for(lambda: len(slow_servicenow.writes()) == 1, timeout=5)
    # The write is still in progress on the ITSM side when the user has the reply.
    assert slow_servicenow.record("incident", SYS_ID)["assignment_group"] in (
        "",
        group_id,
    )
    assert wait_for(
        lambda: _statuses(sessions) == ["done"], timeout=ITSM_DELAY_SECONDS + 10
    )
    assert slow_servicenow.record("incident", SYS_ID)["assignment_group"] == group_id
    (note,) = slow_servicenow.journal(SYS_ID)
    assert "Ada Lovelace reassigned this ticket to HIVE in Slack." in note


def _statuses(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return [action.status for action in list_actions(session)]
