"""Load what happened to each ticket: its first decision and its later audit events.

The metrics read the events named in the audit-log contract. Events that no part of
a deployment writes yet (escalations, SLA clocks) are read all the same, and the
metrics built on them stay null until such rows exist.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from router.store.models import audit_log, decisions, tickets

# Audit events that record what happened to a ticket after it was decided.
FOLLOW_UP_EVENTS = (
    "override",
    "review_resolved",
    "transfer",
    "ticket_resolved",
    "escalation_started",
    "escalation_level",
    "escalation_acknowledged",
    "escalation_resolved",
    "escalation_downgraded",
    "sla_breached",
)
# Audit rows whose details carry this flag were written by the demo's simulation.
SIMULATED_FLAG = "simulated"


@dataclass(frozen=True, slots=True)
class FirstDecision:
    """The first decision the router made for a ticket."""

    decision_id: int
    resolver_group: str
    intent: str
    confidence: float
    action: str
    threshold: float
    model_version: str
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class TicketEvent:
    """One follow-up audit row of a ticket."""

    event: str
    at: datetime
    actor: str
    details: dict[str, Any]


@dataclass
class TicketHistory:
    """A ticket's first decision and its follow-up events, oldest first."""

    key: str
    source_system: str
    title: str
    payload: dict[str, Any]
    first: FirstDecision
    events: list[TicketEvent] = field(default_factory=list)


def load_histories(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[TicketHistory]:
    """Load the histories of tickets first decided in [since, until).

    Returns:
        One history per ticket, in the order of their first decision.
    """
    ranked = select(
        decisions,
        func.row_number()
        .over(
            partition_by=decisions.c.ticket_id,
            order_by=(decisions.c.decided_at, decisions.c.id),
        )
        .label("rank"),
    ).subquery()
    query = (
        select(ranked, tickets.c.key, tickets.c.source_system, tickets.c.title)
        .add_columns(tickets.c.payload)
        .join(tickets, tickets.c.id == ranked.c.ticket_id)
        .where(ranked.c.rank == 1)
        .order_by(ranked.c.decided_at, ranked.c.id)
    )
    if since is not None:
        query = query.where(ranked.c.decided_at >= since)
    if until is not None:
        query = query.where(ranked.c.decided_at < until)

    histories: dict[str, TicketHistory] = {}
    for row in session.execute(query):
        histories[row.key] = TicketHistory(
            key=row.key,
            source_system=row.source_system,
            title=row.title,
            payload=row.payload,
            first=FirstDecision(
                decision_id=row.id,
                resolver_group=row.resolver_group,
                intent=row.intent,
                confidence=row.confidence,
                action=row.action,
                threshold=row.threshold,
                model_version=row.model_version,
                decided_at=row.decided_at,
            ),
        )
    if histories:
        _attach_events(session, histories, since=since)
    return list(histories.values())


def _attach_events(
    session: Session, histories: dict[str, TicketHistory], *, since: datetime | None
) -> None:
    query = (
        select(
            audit_log.c.ticket_key,
            audit_log.c.event,
            audit_log.c.at,
            audit_log.c.actor,
            audit_log.c.details,
        )
        .where(
            audit_log.c.event.in_(FOLLOW_UP_EVENTS),
            audit_log.c.ticket_key.is_not(None),
        )
        .order_by(audit_log.c.at, audit_log.c.id)
    )
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    grouped: dict[str, list[TicketEvent]] = defaultdict(list)
    for row in session.execute(query):
        if row.ticket_key in histories:
            grouped[row.ticket_key].append(
                TicketEvent(
                    event=row.event,
                    at=row.at,
                    actor=row.actor,
                    details=dict(row.details or {}),
                )
            )
    for key, events in grouped.items():
        histories[key].events = events


def is_simulated(histories: Sequence[TicketHistory]) -> bool:
    """Return whether any follow-up event of these tickets was simulated."""
    return any(
        bool(event.details.get(SIMULATED_FLAG))
        for history in histories
        for event in history.events
    )
