"""Claiming outbox actions and recording how their delivery ended.

`router.store.outbox` re-exports these functions, so callers import them from there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from router.store.errors import ActionNotFoundError
from router.store.models import outbox_actions
from router.store.records import ActionStatus, OutboxAction

logger = logging.getLogger(__name__)

# Statuses from which the dispatcher may still reschedule or park an action.
_OPEN_STATUSES = (ActionStatus.PENDING, ActionStatus.IN_FLIGHT)


def claim_due_actions(
    session: Session,
    *,
    limit: int,
    now: datetime,
    worker: str,
    lease_seconds: float,
    targets: Sequence[tuple[str, str]] | None = None,
) -> list[OutboxAction]:
    """Claim up to `limit` due actions, earliest first, and mark them in_flight.

    An action is due when it is pending and its `next_attempt_at` has come, or when
    it is in_flight and its claim expired, because the dispatcher that claimed it
    died. Each claim adds one attempt, so an attempt cut short by a crash counts
    too. On PostgreSQL the rows are selected `FOR UPDATE SKIP LOCKED`, so concurrent
    dispatchers claim disjoint actions.

    Args:
        lease_seconds: how long the claim lasts; set it above the longest delivery.
        targets: (system, instance) pairs to claim for, such as the connectors that
            have API credentials; None claims for every system.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")
    if lease_seconds <= 0:
        raise ValueError(f"lease_seconds must be positive, got {lease_seconds}.")
    if not worker:
        raise ValueError("worker is empty; pass the replica id that claims actions.")
    if targets is not None and not targets:
        return []

    due = _due_condition(now)
    query = (
        select(outbox_actions.c.id)
        .where(due)
        .order_by(outbox_actions.c.next_attempt_at, outbox_actions.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if targets is not None:
        query = query.where(
            or_(
                *(
                    and_(
                        outbox_actions.c.system == system,
                        outbox_actions.c.instance == instance,
                    )
                    for system, instance in targets
                )
            )
        )
    ids = list(session.execute(query).scalars())
    if not ids:
        return []

    # Checking `due` again matters on SQLite, where another process may have
    # claimed these actions between the SELECT and the UPDATE.
    rows = session.execute(
        update(outbox_actions)
        .where(outbox_actions.c.id.in_(ids), due)
        .values(
            status=ActionStatus.IN_FLIGHT.value,
            claimed_by=worker,
            claim_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=outbox_actions.c.attempts + 1,
            updated_at=now,
        )
        .returning(*outbox_actions.c)
    ).all()
    position = {action_id: index for index, action_id in enumerate(ids)}
    claimed = [OutboxAction(**row._mapping) for row in rows]
    claimed.sort(key=lambda action: position[action.id])
    logger.debug("Dispatcher %s claimed %d outbox actions", worker, len(claimed))
    return claimed


def mark_action_done(
    session: Session,
    *,
    action_id: int,
    result: Mapping[str, Any],
    now: datetime | None = None,
) -> None:
    """Record a delivered action with what the connector reported.

    Raises:
        ActionNotFoundError: no action has the id.
    """
    now = now or datetime.now(UTC)
    changed = session.execute(
        update(outbox_actions)
        .where(outbox_actions.c.id == action_id)
        .values(
            status=ActionStatus.DONE.value,
            result=dict(result),
            claim_expires_at=None,
            updated_at=now,
            done_at=now,
        )
        .returning(outbox_actions.c.id)
    ).first()
    if changed is None:
        raise ActionNotFoundError(action_id)


def mark_actions_done(
    session: Session,
    *,
    results: Sequence[tuple[int, Mapping[str, Any]]],
    now: datetime | None = None,
) -> None:
    """Record several delivered actions in one statement, each with its result.

    `results` contains (action id, the connector's result) pairs. One UPDATE
    executed for many parameter sets costs far less than one statement per action.
    """
    if not results:
        return
    now = now or datetime.now(UTC)
    statement = (
        update(outbox_actions)
        .where(outbox_actions.c.id == bindparam("done_id"))
        .values(
            status=ActionStatus.DONE.value,
            result=bindparam("done_result"),
            claim_expires_at=None,
            updated_at=now,
            done_at=now,
        )
    )
    session.connection().execute(
        statement,
        [
            {"done_id": action_id, "done_result": dict(result)}
            for action_id, result in results
        ],
    )


def reschedule_action(
    session: Session,
    *,
    action_id: int,
    error: str,
    next_attempt_at: datetime,
    now: datetime | None = None,
) -> None:
    """Return a failed delivery to pending, due again at `next_attempt_at`.

    An action that is already done or dead keeps its status, which happens when
    another dispatcher took over an expired claim and finished first.

    NOTE: The claimer is not checked, so a dispatcher whose claim expired can return
    an action to pending while another one delivers it, which costs one redelivery.

    Raises:
        ActionNotFoundError: no action has the id.
    """
    _finish_open_action(
        session,
        action_id=action_id,
        values={
            "status": ActionStatus.PENDING.value,
            "last_error": error,
            "next_attempt_at": next_attempt_at,
            "claim_expires_at": None,
            "updated_at": now or datetime.now(UTC),
        },
    )


def park_action_dead(
    session: Session, *, action_id: int, error: str, now: datetime | None = None
) -> None:
    """Stop delivering an action after a permanent error or its last attempt.

    A dead action stays until `retry_action` queues it again. An action that is
    already done keeps its status.

    Raises:
        ActionNotFoundError: no action has the id.
    """
    parked = _finish_open_action(
        session,
        action_id=action_id,
        values={
            "status": ActionStatus.DEAD.value,
            "last_error": error,
            "claim_expires_at": None,
            "updated_at": now or datetime.now(UTC),
        },
    )
    if parked:
        logger.debug("Parked outbox action %d as dead: %s", action_id, error)


def get_action(session: Session, *, action_id: int) -> OutboxAction:
    """Return the action with this id.

    Raises:
        ActionNotFoundError: no action has the id.
    """
    row = session.execute(
        select(outbox_actions).where(outbox_actions.c.id == action_id)
    ).first()
    if row is None:
        raise ActionNotFoundError(action_id)
    return OutboxAction(**row._mapping)


def _due_condition(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(
            outbox_actions.c.status == ActionStatus.PENDING,
            outbox_actions.c.next_attempt_at <= now,
        ),
        and_(
            outbox_actions.c.status == ActionStatus.IN_FLIGHT,
            outbox_actions.c.claim_expires_at <= now,
        ),
    )


def _finish_open_action(
    session: Session, *, action_id: int, values: dict[str, Any]
) -> bool:
    changed = session.execute(
        update(outbox_actions)
        .where(
            outbox_actions.c.id == action_id,
            outbox_actions.c.status.in_(_OPEN_STATUSES),
        )
        .values(**values)
        .returning(outbox_actions.c.id)
    ).first()
    if changed is not None:
        return True
    stored = get_action(session, action_id=action_id)
    logger.warning(
        "Outbox action %d is already %s; leaving it %s",
        action_id,
        stored.status,
        stored.status,
    )
    return False
