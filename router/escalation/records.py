"""The escalation record the API returns, and reads of the escalations table."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from router.mapping import MappingSet, load_mappings
from router.store.models import decisions, escalations, tickets

EscalationStatus = Literal["open", "acknowledged", "resolved"]
ACTIVE_STATUSES = ("open", "acknowledged")

_mappings_lock = threading.Lock()
_mappings: MappingSet | None = None


@dataclass(frozen=True, slots=True)
class EscalationRecord:
    """A ticket's escalation as stored."""

    id: int
    ticket_key: str
    policy: str
    level: int
    status: EscalationStatus
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    started_at: datetime
    next_fire_at: datetime | None
    sla_due_at: datetime | None


def to_record(row: Row[Any]) -> EscalationRecord:
    """Turn an `escalations` row into a record."""
    return EscalationRecord(
        id=row.id,
        ticket_key=row.ticket_key,
        policy=row.policy,
        level=row.level,
        status=row.status,
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=row.acknowledged_at,
        started_at=row.started_at,
        next_fire_at=row.next_fire_at,
        sla_due_at=row.sla_due_at,
    )


def active_row(session: Session, *, ticket_key: str) -> Row[Any] | None:
    """Return the ticket's open or acknowledged escalation row, locked for update."""
    query = select(escalations).where(
        escalations.c.ticket_key == ticket_key,
        escalations.c.status.in_(ACTIVE_STATUSES),
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.execute(query).first()


def latest_row(session: Session, *, ticket_key: str) -> Row[Any] | None:
    """Return the ticket's active escalation, else its most recent one."""
    active = active_row(session, ticket_key=ticket_key)
    if active is not None:
        return active
    return session.execute(
        select(escalations)
        .where(escalations.c.ticket_key == ticket_key)
        .order_by(escalations.c.id.desc())
        .limit(1)
    ).first()


def stored_ticket(session: Session, *, ticket_key: str) -> dict[str, Any]:
    """Return the stored ticket's payload, or {} when the ticket is not stored."""
    payload = session.execute(
        select(tickets.c.payload).where(tickets.c.key == ticket_key)
    ).scalar_one_or_none()
    return dict(payload or {})


def routed_group(session: Session, *, ticket_key: str) -> str | None:
    """Return the resolver group of the ticket's latest decision, if it has one."""
    return session.execute(
        select(decisions.c.resolver_group)
        .join(tickets, tickets.c.id == decisions.c.ticket_id)
        .where(tickets.c.key == ticket_key)
        .order_by(decisions.c.decided_at.desc(), decisions.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def use_mappings(mappings: MappingSet | None) -> None:
    """Set the mapping set whose escalation policies the API uses; None reloads."""
    global _mappings
    with _mappings_lock:
        _mappings = mappings


def current_mappings() -> MappingSet:
    """Return the mapping set in use, loading the configured one on first use."""
    global _mappings
    with _mappings_lock:
        if _mappings is None:
            _mappings = load_mappings()
        return _mappings
