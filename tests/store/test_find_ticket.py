"""find_ticket: lookups by the system's own id or by `system:id`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from router.schemas import Decision, Ticket
from router.store.errors import AmbiguousTicketError, TicketNotFoundError
from router.store.service import find_ticket, save_decisions

TicketBuilder = Callable[..., Ticket]
DecisionBuilder = Callable[..., Decision]


@pytest.fixture
def saved(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> Session:
    """Return the session after saving one ticket from each of three systems."""
    stored = [
        make_ticket(source_system="jira", external_id="HDFS-123"),
        make_ticket(source_system="servicenow", external_id="INC0012345"),
        make_ticket(source_system="salesforce", external_id="00001234"),
        # The same id in two systems makes a lookup without prefix ambiguous.
        make_ticket(source_system="jira", external_id="OPS-7"),
        make_ticket(source_system="servicenow", external_id="OPS-7"),
    ]
    save_decisions(session, items=[(t, make_decision(t)) for t in stored])
    session.commit()
    return session


@pytest.mark.parametrize("ref", ["HDFS-123", "INC0012345", "00001234"])
def test_id_without_prefix_is_found(saved: Session, ref: str) -> None:
    assert find_ticket(saved, ref=ref).external_id == ref


def test_prefixed_id_is_found(saved: Session) -> None:
    record = find_ticket(saved, ref="servicenow:INC0012345")

    assert record.key == "servicenow:INC0012345"
    assert record.source_system == "servicenow"


def test_prefix_ignores_case(saved: Session) -> None:
    assert find_ticket(saved, ref="JIRA:HDFS-123").key == "jira:HDFS-123"


def test_surrounding_spaces_are_ignored(saved: Session) -> None:
    assert find_ticket(saved, ref="  HDFS-123 ").key == "jira:HDFS-123"


def test_found_ticket_rebuilds_model(
    saved: Session, make_ticket: TicketBuilder
) -> None:
    record = find_ticket(saved, ref="jira:HDFS-123")

    assert record.to_ticket() == make_ticket()


def test_unknown_id_raises_not_found(saved: Session) -> None:
    with pytest.raises(TicketNotFoundError, match="'HDFS-999' not found") as caught:
        find_ticket(saved, ref="HDFS-999")

    assert caught.value.ref == "HDFS-999"


def test_wrong_system_prefix_raises_not_found(saved: Session) -> None:
    with pytest.raises(TicketNotFoundError, match="'salesforce:HDFS-123'"):
        find_ticket(saved, ref="salesforce:HDFS-123")


def test_shared_id_raises_ambiguous(saved: Session) -> None:
    with pytest.raises(AmbiguousTicketError) as caught:
        find_ticket(saved, ref="OPS-7")

    assert caught.value.systems == ("jira", "servicenow")
    assert "jira, servicenow" in str(caught.value)
    assert "'jira:OPS-7'" in str(caught.value)


def test_ambiguous_error_is_lookup_error(saved: Session) -> None:
    with pytest.raises(LookupError):
        find_ticket(saved, ref="OPS-7")


def test_prefix_resolves_shared_id(saved: Session) -> None:
    assert find_ticket(saved, ref="servicenow:OPS-7").source_system == "servicenow"


def test_id_containing_colon_is_found(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket(source_system="servicenow", external_id="CHG:42")
    save_decisions(session, items=[(ticket, make_decision(ticket))])

    assert find_ticket(session, ref="CHG:42").key == "servicenow:CHG:42"


def test_empty_ref_is_rejected(session: Session) -> None:
    with pytest.raises(ValueError, match="reference is empty"):
        find_ticket(session, ref=" ")
