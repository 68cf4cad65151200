"""The durable inbox: webhook events stored before the webhook is acknowledged.

The service stores each batch of parsed events with `insert_inbox_events` and
acknowledges the webhooks only after its commit. Its worker claims pending events with
`claim_inbox_events`, routes them and marks them with `mark_inbox_done`, all in one
transaction. Like the rest of the store, these functions never commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from router.store._checks import check_lengths
from router.store.db import dialect_insert
from router.store.models import inbox_events
from router.store.records import InboxEvent, InboxStatus

logger = logging.getLogger(__name__)

# Rows per INSERT statement. A larger batch is split, so the statement stays under
# SQLite's default limit of 32,766 bound parameters (since SQLite 3.32) at 15 per row.
MAX_ROWS_PER_STATEMENT = 1000

FINAL_OUTCOMES = (InboxStatus.DONE, InboxStatus.SKIPPED, InboxStatus.FAILED)

_CHECKED_LENGTHS = (
    "system",
    "instance",
    "delivery_id",
    "record_key",
    "record_version",
    "event_type",
)


@dataclass(frozen=True, slots=True)
class NewInboxEvent:
    """A parsed webhook event, ready to store.

    `headers` must already be filtered: no secrets and no Authorization header.
    `received_at` must be timezone-aware.
    """

    system: str
    instance: str
    delivery_id: str | None
    record_key: str
    record_version: str | None
    event_type: str
    record: dict[str, Any]
    headers: dict[str, str]
    received_at: datetime


def dedupe_key(event: NewInboxEvent) -> str:
    """Return the key that makes a redelivered event a duplicate.

    The key is the delivery id when the system sends one, else the record key with
    its version. A record that has neither is keyed by a SHA-256 of its content, so an
    identical redelivery is a duplicate and any change is stored.
    """
    prefix = f"{event.system}:{event.instance}"
    if event.delivery_id:
        return f"{prefix}:d:{event.delivery_id}"
    if event.record_version:
        return f"{prefix}:r:{event.record_key}:{event.record_version}"
    canonical = json.dumps(event.record, sort_keys=True, default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    return f"{prefix}:h:{event.record_key}:{digest}"


def insert_inbox_events(
    session: Session, *, events: Sequence[NewInboxEvent]
) -> list[bool]:
    """Store a batch of webhook events, skipping those already stored.

    The batch is one multi-row `INSERT ... ON CONFLICT (dedupe_key) DO NOTHING`
    (split only past `MAX_ROWS_PER_STATEMENT` rows). On PostgreSQL, an insert that
    meets the same key in another open transaction waits for it, so a duplicate is
    reported only once the first copy is committed.

    Returns:
        One flag per event, in input order: True if this call stored it, False if it
        is a duplicate of a stored event or of an earlier event in the batch.

    Raises:
        ValueError: a field is empty or longer than its column.
    """
    if not events:
        return []
    keys = [dedupe_key(_checked(event)) for event in events]

    rows: dict[str, dict[str, Any]] = {}
    for event, key in zip(events, keys, strict=True):
        if key not in rows:
            rows[key] = _row(event, key)

    stmt = (
        dialect_insert(session, inbox_events)
        .on_conflict_do_nothing(index_elements=[inbox_events.c.dedupe_key])
        .returning(inbox_events.c.dedupe_key)
    )
    values = list(rows.values())
    stored: set[str] = set()
    for start in range(0, len(values), MAX_ROWS_PER_STATEMENT):
        chunk = values[start : start + MAX_ROWS_PER_STATEMENT]
        stored.update(session.execute(stmt, chunk).scalars())

    flags: list[bool] = []
    seen: set[str] = set()
    for key in keys:
        flags.append(key in stored and key not in seen)
        seen.add(key)
    logger.debug(
        "Stored %d of %d inbox events; %d were duplicates",
        len(stored),
        len(events),
        len(events) - len(stored),
    )
    return flags


def claim_inbox_events(
    session: Session, *, limit: int, worker: str
) -> list[InboxEvent]:
    """Claim up to `limit` pending events, oldest first, for the caller's transaction.

    Each claimed event gets `claimed_by = worker` and one more attempt. On PostgreSQL
    the rows are selected `FOR UPDATE SKIP LOCKED`: they stay locked until the
    transaction ends, other workers skip them meanwhile, and a rollback (or a killed
    process) gives them back. SQLite has no row locks, so there the caller should
    hold the write lock (`BEGIN IMMEDIATE`) from the claim to the commit.

    NOTE: The attempt count rolls back with the claim, so an event that kills its
    worker every time is claimed again forever.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")
    if not worker:
        raise ValueError("worker is empty; pass the replica id that claims the events.")

    ids = list(
        session.execute(
            select(inbox_events.c.id)
            .where(inbox_events.c.status == InboxStatus.PENDING)
            .order_by(inbox_events.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if not ids:
        return []

    # The status condition matters on SQLite, where another process may have
    # finished these events between the SELECT and the UPDATE.
    rows = session.execute(
        update(inbox_events)
        .where(
            inbox_events.c.id.in_(ids),
            inbox_events.c.status == InboxStatus.PENDING,
        )
        .values(claimed_by=worker, attempts=inbox_events.c.attempts + 1)
        .returning(*inbox_events.c)
    ).all()
    claimed = sorted((InboxEvent(**row._mapping) for row in rows), key=_event_id)
    logger.debug("Worker %s claimed %d inbox events", worker, len(claimed))
    return claimed


def mark_inbox_done(
    session: Session,
    *,
    ids: Sequence[int],
    outcome: str = InboxStatus.DONE,
    error: str | None = None,
    now: datetime | None = None,
) -> int:
    """Give pending events their final status and return how many were changed.

    Args:
        ids: the events, usually from `claim_inbox_events`.
        outcome: "done" (routed), "skipped" (nothing to route, such as a record
            that is not a ticket) or "failed" (cannot be routed).
        error: why the events were skipped or failed; required for "failed".
        now: the processing time; the current time by default.
    """
    if outcome not in FINAL_OUTCOMES:
        raise ValueError(
            f"Inbox outcome {outcome!r} is invalid; use one of "
            f"{', '.join(FINAL_OUTCOMES)}."
        )
    if outcome == InboxStatus.FAILED and not error:
        raise ValueError("A failed inbox event needs an error; pass error=...")
    if not ids:
        return 0

    changed = session.execute(
        update(inbox_events)
        .where(
            inbox_events.c.id.in_(list(ids)),
            inbox_events.c.status == InboxStatus.PENDING,
        )
        .values(
            status=str(outcome),
            processed_at=now or datetime.now(UTC),
            error=error,
        )
        .returning(inbox_events.c.id)
    ).all()
    if len(changed) != len(set(ids)):
        logger.warning(
            "Marked %d of %d inbox events %s; the others were not pending",
            len(changed),
            len(set(ids)),
            outcome,
        )
    return len(changed)


def count_pending_inbox(session: Session) -> int:
    """Return the number of events waiting for the worker."""
    return session.execute(
        select(func.count())
        .select_from(inbox_events)
        .where(inbox_events.c.status == InboxStatus.PENDING)
    ).scalar_one()


def _checked(event: NewInboxEvent) -> NewInboxEvent:
    for name in ("system", "instance", "record_key", "event_type"):
        if not getattr(event, name):
            raise ValueError(
                f"Inbox event field {name} is empty (record {event.record_key!r}); "
                "the connector must set it."
            )
    check_lengths(inbox_events, event, _CHECKED_LENGTHS, what="Inbox event")
    return event


def _row(event: NewInboxEvent, key: str) -> dict[str, Any]:
    return {
        "dedupe_key": key,
        "system": event.system,
        "instance": event.instance,
        "delivery_id": event.delivery_id,
        "record_key": event.record_key,
        "record_version": event.record_version,
        "event_type": event.event_type,
        "record": event.record,
        "headers": event.headers,
        "status": InboxStatus.PENDING.value,
        "received_at": event.received_at,
        "processed_at": None,
        "claimed_by": None,
        "attempts": 0,
        "error": None,
    }


def _event_id(event: InboxEvent) -> int:
    return event.id
