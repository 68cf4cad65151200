"""Re-evaluate a ticket's escalation when its source system reports a change.

A change of state there (someone started work on it) acknowledges the
escalation. A change of priority or entitlement moves the SLA deadline. Neither
touches the ticket's assignment, which stays as the person set it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from router.escalation.records import (
    ACTIVE_STATUSES,
    EscalationRecord,
    active_row,
    current_mappings,
    stored_ticket,
)
from router.escalation.service import acknowledge, current_escalation, sla_due
from router.schemas import Ticket
from router.store.models import escalations

logger = logging.getLogger(__name__)


def observe_ticket_updates(
    session: Session, *, tickets: Sequence[Ticket], now: datetime
) -> int:
    """Apply a batch of ticket updates; return how many had an active escalation.

    One query finds the tickets with an active escalation, so a batch of updates
    to tickets without one costs a single round trip.
    """
    keys = {ticket.key for ticket in tickets}
    if not keys:
        return 0
    escalated = set(
        session.execute(
            select(escalations.c.ticket_key).where(
                escalations.c.ticket_key.in_(keys),
                escalations.c.status.in_(ACTIVE_STATUSES),
            )
        ).scalars()
    )
    for ticket in tickets:
        if ticket.key in escalated:
            observe_ticket_update(session, ticket=ticket, now=now)
    return len(escalated)


def observe_ticket_update(
    session: Session, *, ticket: Ticket, now: datetime
) -> EscalationRecord | None:
    """Apply an update of the ticket from its system to its active escalation.

    Returns the escalation after the update, or None when the ticket has none.
    """
    row = active_row(session, ticket_key=ticket.key)
    if row is None:
        return None
    stored = stored_ticket(session, ticket_key=ticket.key)
    if (
        row.status == "open"
        and ticket.state is not None
        and stored.get("state") is not None
        and ticket.state != stored.get("state")
    ):
        acknowledge(
            session,
            ticket_key=ticket.key,
            actor=f"{ticket.source_system}:update",
            source=ticket.source_system,
            now=now,
        )

    # NOTE: Skipped updates are not enriched again, so a changed entitlement
    # moves the SLA deadline only when the ticket is routed again.
    changes: dict[str, object] = {}
    if ticket.assignment_group and ticket.assignment_group != row.assignment_group:
        changes["assignment_group"] = ticket.assignment_group
    if ticket.priority is not None and ticket.priority != row.priority:
        file = current_mappings().escalations.get(row.policy)
        if file is not None:
            changes["priority"] = ticket.priority
            changes["sla_due_at"] = sla_due(
                file,
                priority=ticket.priority,
                entitlement=row.entitlement,
                now=row.started_at,
            )
    if changes:
        session.execute(
            update(escalations)
            .where(escalations.c.id == row.id)
            .values(**changes, updated_at=now)
        )
        logger.info(
            "Re-evaluated the escalation of ticket=%s: %s",
            ticket.key,
            sorted(changes),
        )
    return current_escalation(session, ticket_key=ticket.key)
