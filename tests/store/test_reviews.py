"""Review items: listing the open ones and resolving them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from router.schemas import Decision, DecisionAction, Ticket
from router.store.errors import ReviewNotFoundError, TicketNotFoundError
from router.store.models import review_items
from router.store.reviews import list_open_reviews, resolve_review
from router.store.service import save_decisions, ticket_trail

TicketBuilder = Callable[..., Ticket]
DecisionBuilder = Callable[..., Decision]


@pytest.fixture
def save_review(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> Callable[[str], Ticket]:
    """Return a function that saves a review decision for a Jira id and commits."""

    def save(external_id: str) -> Ticket:
        ticket = make_ticket(external_id=external_id)
        decision = make_decision(ticket, action=DecisionAction.REVIEW, confidence=0.4)
        save_decisions(session, items=[(ticket, decision)])
        session.commit()
        return ticket

    return save


def test_open_reviews_list_oldest_first(
    session: Session, save_review: Callable[[str], Ticket]
) -> None:
    for external_id in ("HDFS-3", "HDFS-1", "HDFS-2"):
        save_review(external_id)

    keys = [item.ticket_key for item in list_open_reviews(session)]

    assert keys == ["jira:HDFS-3", "jira:HDFS-1", "jira:HDFS-2"]


def test_open_reviews_respect_limit(
    session: Session, save_review: Callable[[str], Ticket]
) -> None:
    for number in range(5):
        save_review(f"HDFS-{number}")

    assert len(list_open_reviews(session, limit=2)) == 2


def test_open_review_shows_suggestion(
    session: Session, save_review: Callable[[str], Ticket]
) -> None:
    save_review("HDFS-1")

    [item] = list_open_reviews(session)

    assert item.title == "NameNode fails over every night"
    assert item.suggested_group == "storage-team"
    assert item.confidence == pytest.approx(0.4)
    assert item.status == "open"


def test_open_reviews_reject_zero_limit(session: Session) -> None:
    with pytest.raises(ValueError, match="got 0"):
        list_open_reviews(session, limit=0)


def test_resolve_closes_item(
    session: Session, save_review: Callable[[str], Ticket]
) -> None:
    save_review("HDFS-1")

    resolved = resolve_review(
        session, ref="HDFS-1", group="platform-team", actor="cli:alice"
    )
    session.commit()

    assert resolved.status == "resolved"
    assert resolved.resolved_group == "platform-team"
    assert resolved.resolved_by == "cli:alice"
    assert resolved.resolved_at is not None
    assert resolved.resolved_at.tzinfo is UTC
    assert list_open_reviews(session) == []


def test_resolve_appends_audit_row(
    session: Session, save_review: Callable[[str], Ticket]
) -> None:
    ticket = save_review("HDFS-1")

    resolved = resolve_review(
        session, ref="jira:HDFS-1", group="platform-team", actor="cli:alice"
    )
    entry = ticket_trail(session, ticket_key=ticket.key)[-1]

    assert entry.event == "review_resolved"
    assert entry.actor == "cli:alice"
    assert entry.details["resolved_group"] == "platform-team"
    assert entry.details["review_item_id"] == resolved.id
    assert entry.details["overridden"] is True
    assert entry.inputs["suggested_group"] == "storage-team"
    assert entry.versions == {"model": "routing-2025.03.1", "policy": "policy-7"}


def test_resolve_without_open_item_raises(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    save_decisions(session, items=[(ticket, make_decision(ticket))])

    with pytest.raises(ReviewNotFoundError, match="'jira:HDFS-123' has no open review"):
        resolve_review(session, ref="HDFS-123", group="storage-team", actor="cli:a")


def test_resolving_twice_raises(
    session: Session, save_review: Callable[[str], Ticket]
) -> None:
    save_review("HDFS-1")
    resolve_review(session, ref="HDFS-1", group="storage-team", actor="cli:alice")

    with pytest.raises(ReviewNotFoundError):
        resolve_review(session, ref="HDFS-1", group="storage-team", actor="cli:bob")


def test_resolve_unknown_ticket_raises(session: Session) -> None:
    with pytest.raises(TicketNotFoundError):
        resolve_review(session, ref="HDFS-404", group="storage-team", actor="cli:a")


def test_resolve_rejects_empty_group(
    session: Session, save_review: Callable[[str], Ticket]
) -> None:
    save_review("HDFS-1")

    with pytest.raises(ValueError, match="group is empty"):
        resolve_review(session, ref="HDFS-1", group="  ", actor="cli:alice")


def test_review_after_resolution_opens_new_item(
    session: Session, save_review: Callable[[str], Ticket]
) -> None:
    save_review("HDFS-1")
    first = resolve_review(
        session, ref="HDFS-1", group="storage-team", actor="cli:alice"
    )
    session.commit()

    save_review("HDFS-1")
    [reopened] = list_open_reviews(session)

    assert reopened.id != first.id
    assert reopened.ticket_key == "jira:HDFS-1"


def test_database_rejects_second_open_item(
    session: Session, save_review: Callable[[str], Ticket]
) -> None:
    save_review("HDFS-1")
    item = session.execute(select(review_items)).one()
    duplicate = {
        "ticket_id": item.ticket_id,
        "decision_id": item.decision_id,
        "status": "open",
        "candidates": [],
        "created_at": item.created_at,
    }

    with pytest.raises(IntegrityError):
        session.execute(insert(review_items), duplicate)
