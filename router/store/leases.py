"""Database leases and job slots, so periodic jobs run once across all replicas.

A replica runs the scheduler's jobs only while it holds the lease (for example
"scheduler"), renewing it well within its time to live. When the holder dies, the
lease expires and the next replica to call `acquire_lease` takes it. A job that
claims its (job, slot start) row with `claim_job_slot` before each run fires at most
once per slot, even while the lease changes hands. Like the rest of the store, these
functions never commit, so the lease is taken when the caller commits.

Expiry is compared with the `now` that callers pass. The service passes
`database_now`, so every replica measures leases by the database server's clock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session

from router.store.db import dialect_insert
from router.store.models import job_runs, leases
from router.store.records import Lease

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def database_now(session: Session) -> datetime:
    """Return the database server's current time, timezone-aware in UTC.

    Leases compare expiry times written by different replicas, so they use one clock,
    the database's, instead of each replica's own.
    """
    if session.get_bind().dialect.name == "sqlite":
        text = session.execute(
            select(func.strftime("%Y-%m-%d %H:%M:%f", "now"))
        ).scalar_one()
        return datetime.fromisoformat(str(text)).replace(tzinfo=UTC)
    value = session.execute(select(func.now())).scalar_one()
    return value.astimezone(UTC)


def acquire_lease(
    session: Session, *, name: str, holder: str, ttl_seconds: float, now: datetime
) -> bool:
    """Take or renew the lease `name` for `ttl_seconds` and return whether we hold it.

    The lease is created if it does not exist, renewed if `holder` already holds it
    (even after it expired), and taken over if another holder let it expire. A live
    lease of another holder is left alone. The whole check is one upsert, so two
    replicas racing for a free lease cannot both win. On PostgreSQL the second waits
    for the first to commit and then checks its condition against the committed row.
    """
    if not name:
        raise ValueError("Lease name is empty; pass a name such as 'scheduler'.")
    if not holder:
        raise ValueError("Lease holder is empty; pass the replica id.")
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}.")

    stmt = dialect_insert(session, leases).values(
        name=name,
        holder=holder,
        expires_at=now + timedelta(seconds=ttl_seconds),
        acquired_at=now,
    )
    renewing = leases.c.holder == stmt.excluded.holder
    stmt = stmt.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={
            "holder": stmt.excluded.holder,
            "expires_at": stmt.excluded.expires_at,
            # A renewal keeps the time the holder first took the lease.
            "acquired_at": case(
                (renewing, leases.c.acquired_at), else_=stmt.excluded.acquired_at
            ),
        },
        where=renewing | (leases.c.expires_at <= now),
    )
    acquired = session.execute(stmt.returning(leases.c.holder)).scalar() is not None
    logger.debug("Lease %s for %s: %s", name, holder, "held" if acquired else "busy")
    return acquired


def release_lease(session: Session, *, name: str, holder: str) -> bool:
    """Give up the lease if `holder` holds it; return whether it was released."""
    released = session.execute(
        delete(leases)
        .where(leases.c.name == name, leases.c.holder == holder)
        .returning(leases.c.name)
    ).first()
    if released is not None:
        logger.info("Lease %s released by %s", name, holder)
    return released is not None


def get_lease(session: Session, *, name: str) -> Lease | None:
    """Return the lease, expired or not, or None if no holder has taken it."""
    row = session.execute(select(leases).where(leases.c.name == name)).first()
    return None if row is None else Lease(**row._mapping)


def job_slot_start(*, now: datetime, interval_seconds: float) -> datetime:
    """Return the start of the interval that contains `now`, counted from the epoch.

    Every replica computes the same slot for the same interval, which makes the
    value usable as `claim_job_slot`'s `slot_start`.
    """
    if interval_seconds <= 0:
        raise ValueError(f"interval_seconds must be positive, got {interval_seconds}.")
    interval = timedelta(seconds=interval_seconds)
    return _EPOCH + ((now - _EPOCH) // interval) * interval


def claim_job_slot(
    session: Session,
    *,
    job: str,
    slot_start: datetime,
    holder: str,
    now: datetime | None = None,
) -> bool:
    """Record that `holder` runs `job` for the slot; return False if one already did."""
    if not job:
        raise ValueError("Job name is empty; pass the scheduler's job id.")
    stmt = (
        dialect_insert(session, job_runs)
        .values(
            job=job,
            slot_start=slot_start,
            holder=holder,
            ran_at=now or datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=[job_runs.c.job, job_runs.c.slot_start])
        .returning(job_runs.c.job)
    )
    return session.execute(stmt).scalar() is not None


def prune_job_runs(session: Session, *, before: datetime) -> int:
    """Delete job runs whose slot started before `before` and return how many."""
    deleted = session.execute(
        delete(job_runs).where(job_runs.c.slot_start < before).returning(job_runs.c.job)
    ).all()
    return len(deleted)
