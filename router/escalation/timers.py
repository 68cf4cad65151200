"""The escalation timers: repeat or advance due levels, and record SLA breaches.

The state lives in the `escalations` table, so a restarted or replacement
replica carries on where the last one stopped: a timer that fell due while no
replica ran fires on the next tick.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from router.escalation.calendar import add_working_minutes
from router.escalation.records import ACTIVE_STATUSES, stored_ticket
from router.escalation.schemas import BusinessHours, Level
from router.escalation.service import advance, notify_level
from router.store.models import audit_log, escalations
from router.store.service import append_audit

logger = logging.getLogger(__name__)

# Escalations handled per tick; the rest wait for the next one.
BATCH_LIMIT = 200


@dataclass
class TickOutcome:
    """Counts of one run of the timers."""

    repeated: int = 0
    advanced: int = 0
    exhausted: int = 0
    breached: int = 0


def run_timers(session: Session, *, now: datetime) -> TickOutcome:
    """Fire every due escalation timer and record every new SLA breach."""
    outcome = TickOutcome()
    _fire_due(session, now=now, outcome=outcome)
    _record_breaches(session, now=now, outcome=outcome)
    if outcome.repeated or outcome.advanced or outcome.breached:
        logger.info(
            "Escalation timers: repeated=%d advanced=%d exhausted=%d breached=%d",
            outcome.repeated,
            outcome.advanced,
            outcome.exhausted,
            outcome.breached,
        )
    return outcome


def _fire_due(session: Session, *, now: datetime, outcome: TickOutcome) -> None:
    query = (
        select(escalations)
        .where(escalations.c.status == "open", escalations.c.next_fire_at <= now)
        .order_by(escalations.c.next_fire_at)
        .limit(BATCH_LIMIT)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    for row in session.execute(query).all():
        levels = [Level.model_validate(level) for level in row.levels]
        level = levels[row.level]
        if row.repeats_done < level.repeat:
            _repeat(session, row=row, level=level, now=now)
            outcome.repeated += 1
        elif row.level + 1 < len(levels):
            advance(
                session,
                row=row,
                now=now,
                actor="opsroute",
                reason=f"not acknowledged within {level.ack_timeout_minutes:g} min",
            )
            outcome.advanced += 1
        else:
            # The last level has run out of repeats: stop paging, stay open.
            session.execute(
                update(escalations)
                .where(escalations.c.id == row.id)
                .values(next_fire_at=None, updated_at=now)
            )
            logger.warning(
                "Escalation %s of ticket=%s ran through every level unacknowledged",
                row.id,
                row.ticket_key,
            )
            outcome.exhausted += 1


def _repeat(session: Session, *, row: Any, level: Level, now: datetime) -> None:
    hours = (
        BusinessHours.model_validate(row.business_hours) if row.business_hours else None
    )
    session.execute(
        update(escalations)
        .where(escalations.c.id == row.id)
        .values(
            repeats_done=row.repeats_done + 1,
            next_fire_at=add_working_minutes(now, level.ack_timeout_minutes, hours),
            updated_at=now,
        )
    )
    fresh = session.execute(select(escalations).where(escalations.c.id == row.id)).one()
    notify_level(
        session,
        row=fresh,
        ticket=stored_ticket(session, ticket_key=row.ticket_key),
        reason=f"still not acknowledged after {level.ack_timeout_minutes:g} min",
    )


def _record_breaches(session: Session, *, now: datetime, outcome: TickOutcome) -> None:
    rows = session.execute(
        select(escalations)
        .where(
            escalations.c.status.in_(ACTIVE_STATUSES),
            escalations.c.sla_due_at <= now,
            escalations.c.sla_breached_at.is_(None),
        )
        .limit(BATCH_LIMIT)
    ).all()
    for row in rows:
        # A breach counts as caused by reassignment when the ticket's group
        # changed (a `transfer` audit row) after the escalation started.
        reassigned = session.execute(
            select(
                exists().where(
                    audit_log.c.ticket_key == row.ticket_key,
                    audit_log.c.event == "transfer",
                    audit_log.c.at >= row.started_at,
                )
            )
        ).scalar_one()
        session.execute(
            update(escalations)
            .where(escalations.c.id == row.id)
            .values(sla_breached_at=now, updated_at=now)
        )
        append_audit(
            session,
            event="sla_breached",
            ticket_key=row.ticket_key,
            actor="opsroute",
            details={
                "priority": row.priority,
                "caused_by_reassignment": bool(reassigned),
                "policy": row.policy,
                "sla_due_at": row.sla_due_at.isoformat(),
            },
        )
        outcome.breached += 1
