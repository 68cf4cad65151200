"""The outbox: write-backs, tasks and notifications waiting to be delivered.

The worker enqueues actions in the transaction that stores the decisions, so a
decision and its effects commit together. The dispatcher claims due actions, delivers
them and then marks each one done, reschedules it or parks it as dead. Delivery is at
least once: an action whose claim expires (its dispatcher died) is due again. Like the
rest of the store, these functions never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from router.store._checks import check_lengths
from router.store._delivery import (
    claim_due_actions,
    get_action,
    mark_action_done,
    mark_actions_done,
    park_action_dead,
    reschedule_action,
)
from router.store.db import dialect_insert
from router.store.errors import ActionNotDeadError
from router.store.models import outbox_actions
from router.store.records import ActionKind, ActionStatus, AuditEvent, OutboxAction
from router.store.service import append_audit

__all__ = [
    "NewOutboxAction",
    "claim_due_actions",
    "count_actions",
    "enqueue_actions",
    "get_action",
    "list_actions",
    "mark_action_done",
    "mark_actions_done",
    "park_action_dead",
    "reschedule_action",
    "retry_action",
]

logger = logging.getLogger(__name__)

_STATUSES = frozenset(ActionStatus)
_KINDS = frozenset(ActionKind)
_CHECKED_LENGTHS = ("system", "instance", "ticket_key", "record_id", "marker")


@dataclass(frozen=True, slots=True)
class NewOutboxAction:
    """An effect to deliver for a ticket.

    `marker` is unique across the outbox. The connector writes it into the record
    with the effect and looks for it before each non-idempotent write.
    """

    system: str
    instance: str
    kind: str
    ticket_key: str
    record_id: str | None
    payload: dict[str, Any]
    marker: str
    decision_id: int | None


def enqueue_actions(
    session: Session,
    *,
    actions: Sequence[NewOutboxAction],
    now: datetime | None = None,
) -> list[int]:
    """Queue actions for immediate delivery and return their ids in input order.

    Enqueueing is idempotent by marker: an action whose marker is already queued
    (or repeated in the batch) is not stored again, and its existing id is returned.

    Raises:
        ValueError: an action has an unknown kind or an empty marker.
    """
    if not actions:
        return []
    now = now or datetime.now(UTC)
    rows: dict[str, dict[str, Any]] = {}
    for action in actions:
        _check_action(action)
        rows.setdefault(action.marker, _row(action, now))

    stmt = (
        dialect_insert(session, outbox_actions)
        .on_conflict_do_nothing(index_elements=[outbox_actions.c.marker])
        .returning(outbox_actions.c.marker, outbox_actions.c.id)
    )
    inserted = session.execute(stmt, list(rows.values()))
    ids: dict[str, int] = {row.marker: row.id for row in inserted}
    already_queued = [marker for marker in rows if marker not in ids]
    if already_queued:
        logger.info("%d outbox actions were already queued", len(already_queued))
        found = session.execute(
            select(outbox_actions.c.marker, outbox_actions.c.id).where(
                outbox_actions.c.marker.in_(already_queued)
            )
        )
        ids.update((row.marker, row.id) for row in found)
    return [ids[action.marker] for action in actions]


def list_actions(
    session: Session, *, status: str | None = None, limit: int = 50
) -> list[OutboxAction]:
    """Return up to `limit` actions, newest first, optionally of one status."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")
    query = select(outbox_actions).order_by(outbox_actions.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(outbox_actions.c.status == _checked_status(status))
    return [OutboxAction(**row._mapping) for row in session.execute(query)]


def retry_action(
    session: Session, *, action_id: int, actor: str, now: datetime | None = None
) -> OutboxAction:
    """Queue a dead action again, due at once, and append an "outbox_retried" row.

    The attempt count restarts at 0, so the action gets the dispatcher's full
    schedule of retries. The audit row keeps the count and the error it died with.

    Raises:
        ActionNotFoundError: no action has the id.
        ActionNotDeadError: the action is pending, in_flight or done.
    """
    now = now or datetime.now(UTC)
    dead = get_action(session, action_id=action_id)
    if dead.status != ActionStatus.DEAD:
        raise ActionNotDeadError(action_id, dead.status)

    # The status condition keeps two concurrent retries from both succeeding.
    row = session.execute(
        update(outbox_actions)
        .where(
            outbox_actions.c.id == action_id,
            outbox_actions.c.status == ActionStatus.DEAD,
        )
        .values(
            status=ActionStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            claimed_by=None,
            claim_expires_at=None,
            updated_at=now,
        )
        .returning(*outbox_actions.c)
    ).first()
    if row is None:
        current = get_action(session, action_id=action_id)
        raise ActionNotDeadError(action_id, current.status)

    append_audit(
        session,
        event=AuditEvent.OUTBOX_RETRIED,
        ticket_key=dead.ticket_key,
        actor=actor,
        inputs={"attempts": dead.attempts, "last_error": dead.last_error},
        details={"action_id": action_id, "kind": dead.kind, "marker": dead.marker},
    )
    logger.info("Outbox action %d re-queued by %s", action_id, actor)
    return OutboxAction(**row._mapping)


def count_actions(session: Session, *, status: str) -> int:
    """Return the number of actions with this status."""
    return session.execute(
        select(func.count())
        .select_from(outbox_actions)
        .where(outbox_actions.c.status == _checked_status(status))
    ).scalar_one()


def _checked_status(status: str) -> str:
    if status not in _STATUSES:
        raise ValueError(
            f"Outbox status {status!r} is invalid; use one of "
            f"{', '.join(ActionStatus)}."
        )
    return str(status)


def _check_action(action: NewOutboxAction) -> None:
    if action.kind not in _KINDS:
        raise ValueError(
            f"Outbox action kind {action.kind!r} for {action.ticket_key} is invalid; "
            f"use one of {', '.join(ActionKind)}."
        )
    if not action.marker:
        raise ValueError(
            f"Outbox action for {action.ticket_key} has an empty marker; give each "
            "action a unique marker, for example derived from its decision id."
        )
    check_lengths(outbox_actions, action, _CHECKED_LENGTHS, what="Outbox action")


def _row(action: NewOutboxAction, now: datetime) -> dict[str, Any]:
    return {
        "system": action.system,
        "instance": action.instance,
        "kind": action.kind,
        "ticket_key": action.ticket_key,
        "record_id": action.record_id,
        "payload": action.payload,
        "marker": action.marker,
        "decision_id": action.decision_id,
        "status": ActionStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "claimed_by": None,
        "claim_expires_at": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
        "done_at": None,
    }
