"""Updates from the source system: state changes acknowledge, priority moves SLA."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from router.escalation.records import use_mappings
from router.escalation.service import current_escalation, start_escalation
from router.escalation.updates import observe_ticket_update
from router.mapping import load_mappings
from router.schemas import Ticket
from router.store.models import tickets

START = datetime.now(UTC).replace(microsecond=0)
TICKET = Ticket(
    source_system="servicenow",
    external_id="INC0000042",
    title="API latency degraded",
    priority=1,
    state="1",
    assignment_group="Platform Operations",
)


@pytest.fixture(autouse=True)
def _shipped_policies() -> Iterator[None]:
    use_mappings(load_mappings())
    yield
    use_mappings(None)


@pytest.fixture
def escalated(session: Session) -> Session:
    session.execute(
        insert(tickets),
        {
            "key": TICKET.key,
            "source_system": "servicenow",
            "external_id": TICKET.external_id,
            "record_id": None,
            "title": TICKET.title,
            "payload": TICKET.model_dump(mode="json"),
            "first_seen_at": START,
            "last_seen_at": START,
        },
    )
    start_escalation(
        session, ticket_key=TICKET.key, policy="premium-incident", now=START
    )
    return session


def test_state_change_acknowledges(escalated: Session) -> None:
    update = TICKET.model_copy(update={"state": "2"})
    record = observe_ticket_update(escalated, ticket=update, now=START)
    assert record is not None
    assert record.status == "acknowledged"
    assert record.acknowledged_by == "servicenow:update"


def test_unchanged_state_keeps_paging(escalated: Session) -> None:
    record = observe_ticket_update(escalated, ticket=TICKET, now=START)
    assert record is not None
    assert record.status == "open"


def test_priority_change_moves_sla(escalated: Session) -> None:
    before = current_escalation(escalated, ticket_key=TICKET.key)
    update = TICKET.model_copy(update={"priority": 3})
    after = observe_ticket_update(escalated, ticket=update, now=START)
    assert before is not None
    assert after is not None
    assert before.sla_due_at == START + timedelta(minutes=240)
    assert after.sla_due_at == START + timedelta(minutes=1440)


def test_ticket_without_escalation_is_ignored(session: Session) -> None:
    assert observe_ticket_update(session, ticket=TICKET, now=START) is None
