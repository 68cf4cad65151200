"""Start, advance, acknowledge and resolve escalations.

Every function runs in the caller's session and transaction and never commits:
it updates the `escalations` row, appends audit rows and queues notifications in
the outbox, so all of it commits or rolls back with the caller's work.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from router.escalation.calendar import add_working_minutes
from router.escalation.messages import (
    TicketSummary,
    escalation_summary,
    notification_action,
    notification_marker,
    targets_text,
)
from router.escalation.records import (
    EscalationRecord,
    active_row,
    current_mappings,
    latest_row,
    routed_group,
    stored_ticket,
    to_record,
)
from router.escalation.schemas import BusinessHours, EscalationFile, Level
from router.policy.facts import visible_context
from router.store.models import escalations
from router.store.outbox import enqueue_actions
from router.store.service import append_audit

logger = logging.getLogger(__name__)


class EscalationPolicyNotFoundError(LookupError):
    """An escalation policy name that has no file under `escalation/`."""


def current_escalation(session: Session, *, ticket_key: str) -> EscalationRecord | None:
    """Return the ticket's active escalation, else its latest one, else None."""
    row = latest_row(session, ticket_key=ticket_key)
    return to_record(row) if row is not None else None


def start_escalation(
    session: Session,
    *,
    ticket_key: str,
    policy: str,
    now: datetime,
    actor: str = "opsroute",
    reason: str | None = None,
    priority: int | None = None,
) -> EscalationRecord:
    """Start the named policy at level 0, unless the ticket has one active already.

    The first level's targets are notified at once. The SLA clock starts now,
    from `priority` (by default the stored ticket's) and the ticket's
    `context.entitlement.name`.

    Raises:
        EscalationPolicyNotFoundError: no file under `escalation/` has that name.
    """
    active = active_row(session, ticket_key=ticket_key)
    if active is not None:
        return to_record(active)
    file = _policy_file(policy)
    ticket = stored_ticket(session, ticket_key=ticket_key)
    priority = priority or ticket.get("priority")
    entitlement = _entitlement(ticket)
    levels = [level.model_dump(mode="json") for level in file.levels]
    hours = file.business_hours.model_dump(mode="json") if file.business_hours else None
    first = file.levels[0]
    values: dict[str, Any] = {
        "ticket_key": ticket_key,
        "policy": policy,
        "policy_version": file.version,
        "levels": levels,
        "business_hours": hours,
        "level": 0,
        "repeats_done": 0,
        "notifications_sent": 0,
        "status": "open",
        "priority": priority,
        "entitlement": entitlement,
        "assignment_group": ticket.get("assignment_group"),
        "started_at": now,
        "next_fire_at": add_working_minutes(
            now, first.ack_timeout_minutes, file.business_hours
        ),
        "sla_due_at": sla_due(
            file, priority=priority, entitlement=entitlement, now=now
        ),
        "updated_at": now,
    }
    escalation_id = session.execute(
        insert(escalations).returning(escalations.c.id), values
    ).scalar_one()
    row = active_row(session, ticket_key=ticket_key)
    if row is None:
        raise RuntimeError(f"Escalation {escalation_id} vanished after its insert.")
    notify_level(session, row=row, ticket=ticket, reason=reason or "escalation started")
    append_audit(
        session,
        event="escalation_started",
        ticket_key=ticket_key,
        actor=actor,
        details={
            "policy": policy,
            "level": 0,
            "target": targets_text(first.targets),
            "reason": reason,
        },
    )
    logger.info("Started escalation %s for ticket=%s", policy, ticket_key)
    return current_escalation(session, ticket_key=ticket_key) or to_record(row)


def acknowledge(
    session: Session, *, ticket_key: str, actor: str, source: str, now: datetime
) -> EscalationRecord | None:
    """Stop the ticket's escalation timers because a person took it.

    Returns the escalation, already acknowledged ones unchanged, or None when the
    ticket has no active escalation. The SLA clock keeps running.
    """
    row = active_row(session, ticket_key=ticket_key)
    if row is None:
        return None
    if row.status == "acknowledged":
        return to_record(row)
    session.execute(
        update(escalations)
        .where(escalations.c.id == row.id)
        .values(
            status="acknowledged",
            acknowledged_by=actor,
            acknowledged_at=now,
            next_fire_at=None,
            updated_at=now,
        )
    )
    append_audit(
        session,
        event="escalation_acknowledged",
        ticket_key=ticket_key,
        actor=actor,
        details={
            "policy": row.policy,
            "level": row.level,
            "target": None,
            "reason": f"acknowledged in {source}",
        },
    )
    logger.info("Escalation of ticket=%s acknowledged by %s", ticket_key, actor)
    return current_escalation(session, ticket_key=ticket_key)


def escalate_now(
    session: Session,
    *,
    ticket_key: str,
    actor: str,
    reason: str | None,
    now: datetime,
) -> EscalationRecord:
    """Move the ticket's escalation up one level now, or start the default policy.

    An acknowledged escalation opens again at the next level. At the last level,
    its targets are notified again.

    Raises:
        EscalationPolicyNotFoundError: the ticket has no active escalation and
            policy.yaml names no `default_escalation`, or names a missing one.
    """
    row = active_row(session, ticket_key=ticket_key)
    if row is None:
        settings = current_mappings().policy_settings
        default = settings.default_escalation if settings else None
        if default is None:
            raise EscalationPolicyNotFoundError(
                f"ticket {ticket_key} has no open escalation and policy.yaml sets no "
                "default_escalation; set it to a file name under escalation/"
            )
        return start_escalation(
            session,
            ticket_key=ticket_key,
            policy=default,
            now=now,
            actor=actor,
            reason=reason or "escalated by hand",
        )
    advance(
        session, row=row, now=now, actor=actor, reason=reason or "escalated by hand"
    )
    record = current_escalation(session, ticket_key=ticket_key)
    if record is None:
        raise RuntimeError(f"Escalation of {ticket_key} vanished while advancing.")
    return record


def resolve_escalation(
    session: Session, *, ticket_key: str, actor: str, now: datetime, reason: str
) -> EscalationRecord | None:
    """End the ticket's active escalation, such as when the ticket is resolved."""
    row = active_row(session, ticket_key=ticket_key)
    if row is None:
        return None
    session.execute(
        update(escalations)
        .where(escalations.c.id == row.id)
        .values(status="resolved", resolved_at=now, next_fire_at=None, updated_at=now)
    )
    append_audit(
        session,
        event="escalation_resolved",
        ticket_key=ticket_key,
        actor=actor,
        details={
            "policy": row.policy,
            "level": row.level,
            "target": None,
            "reason": reason,
        },
    )
    return current_escalation(session, ticket_key=ticket_key)


def advance(
    session: Session, *, row: Any, now: datetime, actor: str, reason: str
) -> None:
    """Go to the next level (or repeat the last one) and notify its targets."""
    levels = [Level.model_validate(level) for level in row.levels]
    level = min(row.level + 1, len(levels) - 1)
    hours = _hours(row)
    session.execute(
        update(escalations)
        .where(escalations.c.id == row.id)
        .values(
            level=level,
            repeats_done=0,
            status="open",
            acknowledged_by=None,
            acknowledged_at=None,
            next_fire_at=add_working_minutes(
                now, levels[level].ack_timeout_minutes, hours
            ),
            updated_at=now,
        )
    )
    fresh = active_row(session, ticket_key=row.ticket_key)
    ticket = stored_ticket(session, ticket_key=row.ticket_key)
    notify_level(session, row=fresh, ticket=ticket, reason=reason)
    append_audit(
        session,
        event="escalation_level",
        ticket_key=row.ticket_key,
        actor=actor,
        details={
            "policy": row.policy,
            "level": level,
            "target": targets_text(levels[level].targets),
            "reason": reason,
        },
    )


def notify_level(
    session: Session, *, row: Any, ticket: dict[str, Any], reason: str
) -> None:
    """Queue one notification per target of the row's current level."""
    level = Level.model_validate(row.levels[row.level])
    summary = _summary(
        row.ticket_key,
        ticket,
        group=routed_group(session, ticket_key=row.ticket_key),
    )
    sla = row.sla_due_at.isoformat() if row.sla_due_at else None
    actions = []
    sent = row.notifications_sent
    for target in level.targets:
        sent += 1
        actions.append(
            notification_action(
                notification_type="escalation",
                target=target,
                reason=f"{reason} (level {row.level + 1} of {len(row.levels)})",
                ticket=summary,
                marker=notification_marker(f"esc-{row.id}", sent),
                escalation=escalation_summary(
                    policy=row.policy, level=row.level, sla_due_at=sla
                ),
            )
        )
    enqueue_actions(session, actions=actions)
    session.execute(
        update(escalations)
        .where(escalations.c.id == row.id)
        .values(notifications_sent=sent)
    )


def sla_due(
    file: EscalationFile,
    *,
    priority: int | None,
    entitlement: str | None,
    now: datetime,
) -> datetime | None:
    """Return when the SLA ends for the priority and entitlement, or None if none."""
    if priority is None:
        return None
    minutes = None
    if entitlement is not None:
        minutes = file.sla.entitlements.get(entitlement, {}).get(priority)
    if minutes is None:
        minutes = file.sla.default.get(priority)
    if minutes is None:
        return None
    return add_working_minutes(now, minutes, file.business_hours)


def _policy_file(name: str) -> EscalationFile:
    files = current_mappings().escalations
    try:
        return files[name]
    except KeyError:
        known = ", ".join(sorted(files)) or "none"
        raise EscalationPolicyNotFoundError(
            f"escalation policy {name!r} has no file under escalation/; expected "
            f"one of: {known}"
        ) from None


def _hours(row: Any) -> BusinessHours | None:
    return (
        BusinessHours.model_validate(row.business_hours) if row.business_hours else None
    )


def _entitlement(ticket: dict[str, Any]) -> str | None:
    entitlement = (ticket.get("context") or {}).get("entitlement")
    if isinstance(entitlement, dict):
        name = entitlement.get("name")
        return str(name) if name else None
    return str(entitlement) if entitlement else None


def _summary(
    ticket_key: str, ticket: dict[str, Any], *, group: str | None
) -> TicketSummary:
    settings = current_mappings().policy_settings
    financial = settings.financial.fields if settings else []
    return TicketSummary(
        ticket_key=ticket_key,
        title=str(ticket.get("title") or ""),
        priority=ticket.get("priority"),
        resolver_group=group or ticket.get("assignment_group"),
        context=visible_context(
            ticket.get("context") or {}, financial_fields=financial, allowed=False
        ),
    )
