"""Builders for hand-made ticket histories: decisions and follow-up audit rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from router.schemas import (
    Candidate,
    Decision,
    DecisionAction,
    Explanation,
    GroupExplanation,
    Ticket,
)
from router.store.service import append_audit, save_decisions

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def hours(count: float) -> timedelta:
    """Return a duration of `count` hours."""
    return timedelta(hours=count)


def decide(
    session: Session,
    ticket_id: str,
    group: str,
    *,
    at: datetime = START,
    action: DecisionAction = DecisionAction.AUTO_ROUTE,
    confidence: float = 0.95,
    intent: str = "general",
    system: str = "jira",
    title: str = "printer on floor 3 is broken",
    model_version: str = "v1",
) -> str:
    """Store one routed ticket with its decision and return the ticket key."""
    ticket = Ticket(source_system=system, external_id=ticket_id, title=title)
    decision = Decision(
        ticket_key=ticket.key,
        resolver_group=group,
        intent=intent,
        confidence=confidence,
        action=action,
        threshold=0.9,
        candidates=[Candidate(group=group, probability=confidence)],
        explanation=Explanation(chosen=GroupExplanation(group=group, score=1.0)),
        model_version=model_version,
        policy_version="1+test",
        decided_at=at,
    )
    save_decisions(session, items=[(ticket, decision)])
    return ticket.key


def event(
    session: Session,
    key: str,
    name: str,
    at: datetime,
    actor: str = "servicenow:agent",
    **details: Any,
) -> None:
    """Append one follow-up audit row at its own time."""
    append_audit(
        session, event=name, ticket_key=key, actor=actor, details=details, at=at
    )
