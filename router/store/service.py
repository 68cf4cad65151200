"""Tickets, decisions, review items and the audit log.

Every function runs inside the caller's session and transaction and never commits,
so a decision and whatever the caller writes with it commit or roll back together.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session

from router.classification.features import MODEL_INPUT_FIELDS
from router.schemas import Decision, DecisionAction, Ticket
from router.store import _batch
from router.store.errors import AmbiguousTicketError, TicketNotFoundError
from router.store.models import audit_log, decisions, tickets
from router.store.records import (
    AuditEntry,
    DecisionRecord,
    TicketRecord,
)

logger = logging.getLogger(__name__)


def save_decisions(
    session: Session,
    *,
    items: Sequence[tuple[Ticket, Decision]],
    actor: str = "opsroute",
    input_fields: Sequence[str] = MODEL_INPUT_FIELDS,
    audit_at_decision_time: bool = False,
) -> list[int]:
    """Store a batch of routed tickets with their decisions, review items and audit.

    Tickets are upserted by key. Each decision gets a row, and each review or
    forced_review decision opens a review item, or updates the ticket's open one to
    point at the newer decision. Each pair appends a "classification" and a
    "decision" audit row. The statements are multi-row Core inserts, so a batch of
    hundreds costs a handful of round trips.

    Args:
        items: (ticket, decision) pairs; a ticket may appear more than once, and the
            last pair wins for the ticket row and the review item.
        actor: who decided, as recorded in the audit log.
        input_fields: Ticket fields recorded as the model's inputs.
        audit_at_decision_time: record the audit rows at each decision's
            `decided_at` instead of now, for replays on a simulated clock.

    Returns:
        The ids of the stored decisions, in the order of `items`.

    Raises:
        ValueError: a decision's `ticket_key` differs from its ticket's key, or an
            input field is not a Ticket field.
    """
    if not items:
        return []
    _batch.check_input_fields(input_fields)
    now = datetime.now(UTC)
    prepared = [_batch.prepare_item(ticket, decision) for ticket, decision in items]

    ticket_ids = _batch.upsert_tickets(session, prepared=prepared, now=now)
    decision_ids = _batch.insert_decisions(
        session, prepared=prepared, ticket_ids=ticket_ids
    )
    opened = _batch.upsert_review_items(
        session,
        prepared=prepared,
        ticket_ids=ticket_ids,
        decision_ids=decision_ids,
        now=now,
    )
    _batch.insert_decision_audit(
        session,
        prepared=prepared,
        decision_ids=decision_ids,
        actor=actor,
        input_fields=input_fields,
        now=now,
        at_decision_time=audit_at_decision_time,
    )
    logger.debug(
        "Saved %d decisions for %d tickets, %d review items",
        len(prepared),
        len(ticket_ids),
        opened,
    )
    return list(decision_ids)


def find_ticket(session: Session, *, ref: str) -> TicketRecord:
    """Find a ticket by its id in its system (`HDFS-123`) or by `system:id`.

    The system prefix matches regardless of case.

    Raises:
        TicketNotFoundError: no ticket matches.
        AmbiguousTicketError: the id without prefix exists in several systems.
    """
    ref = ref.strip()
    if not ref:
        raise ValueError(
            "Ticket reference is empty; pass an id such as 'HDFS-123' or "
            "'jira:HDFS-123'."
        )

    system, separator, external_id = ref.partition(":")
    if separator:
        row = session.execute(
            select(tickets).where(
                func.lower(tickets.c.source_system) == system.lower(),
                tickets.c.external_id == external_id,
            )
        ).first()
        if row is not None:
            return TicketRecord(**row._mapping)

    # An id that itself contains a colon ends up here too.
    rows = session.execute(
        select(tickets)
        .where(tickets.c.external_id == ref)
        .order_by(tickets.c.source_system)
    ).all()
    if not rows:
        raise TicketNotFoundError(ref)
    if len(rows) > 1:
        raise AmbiguousTicketError(ref, [row.source_system for row in rows])
    return TicketRecord(**rows[0]._mapping)


def latest_decision(session: Session, *, ticket_id: int) -> DecisionRecord | None:
    """Return the ticket's most recent decision, or None if it has none."""
    row = session.execute(
        _decision_query()
        .where(decisions.c.ticket_id == ticket_id)
        .order_by(decisions.c.decided_at.desc(), decisions.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return DecisionRecord(**{**row._mapping, "action": DecisionAction(row.action)})


def append_audit(
    session: Session,
    *,
    event: str,
    ticket_key: str | None,
    actor: str,
    inputs: Mapping[str, Any] | None = None,
    versions: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> int:
    """Append one audit row and return its id.

    Args:
        event: what happened, usually an `AuditEvent` value.
        ticket_key: `system:id` of the ticket concerned, or None for events such as
            a model being trained.
        actor: who acted: "opsroute" for the router, "cli:<user>" for a person.
        inputs: what the action was based on.
        versions: model and policy versions in force, as {"model": ..., "policy": ...}.
        details: the outcome.
        at: when the event happened, for events replayed or simulated on their own
            clock; None records the current time. It must be timezone-aware.
    """
    if not event:
        raise ValueError("Audit event is empty; pass a name such as 'decision'.")
    if not actor:
        raise ValueError("Audit actor is empty; pass 'opsroute' or 'cli:<user>'.")
    return session.execute(
        insert(audit_log).returning(audit_log.c.id),
        {
            "at": datetime.now(UTC) if at is None else at,
            "event": str(event),
            "ticket_key": ticket_key,
            "actor": actor,
            "inputs": dict(inputs or {}),
            "versions": dict(versions or {}),
            "details": dict(details or {}),
        },
    ).scalar_one()


def ticket_trail(session: Session, *, ticket_key: str) -> list[AuditEntry]:
    """Return the ticket's audit rows, oldest first (ties broken by insertion order)."""
    rows = session.execute(
        select(audit_log)
        .where(audit_log.c.ticket_key == ticket_key)
        .order_by(audit_log.c.at, audit_log.c.id)
    ).all()
    return [AuditEntry(**row._mapping) for row in rows]


def _decision_query() -> Select[Any]:
    return select(decisions, tickets.c.key.label("ticket_key")).join(
        tickets, tickets.c.id == decisions.c.ticket_id
    )
