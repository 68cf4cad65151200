"""Leases and job slots, checked with explicit times instead of sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from router.store.db import session_factory
from router.store.leases import (
    acquire_lease,
    claim_job_slot,
    database_now,
    get_lease,
    job_slot_start,
    prune_job_runs,
    release_lease,
)
from router.store.models import job_runs

NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
TTL = 15.0


def _acquire(session: Session, holder: str, *, after: float = 0.0) -> bool:
    return acquire_lease(
        session,
        name="scheduler",
        holder=holder,
        ttl_seconds=TTL,
        now=NOW + timedelta(seconds=after),
    )


def test_free_lease_is_acquired(session: Session) -> None:
    assert _acquire(session, "replica-a") is True


def test_acquired_lease_records_holder(session: Session) -> None:
    _acquire(session, "replica-a")

    lease = get_lease(session, name="scheduler")

    assert lease is not None
    assert lease.holder == "replica-a"
    assert lease.acquired_at == NOW
    assert lease.expires_at == NOW + timedelta(seconds=TTL)


def test_live_lease_is_not_taken(session: Session) -> None:
    _acquire(session, "replica-a")

    assert _acquire(session, "replica-b", after=TTL - 0.001) is False


def test_refused_take_leaves_holder(session: Session) -> None:
    _acquire(session, "replica-a")
    _acquire(session, "replica-b", after=1)

    lease = get_lease(session, name="scheduler")

    assert lease is not None
    assert lease.holder == "replica-a"
    assert lease.expires_at == NOW + timedelta(seconds=TTL)


def test_expired_lease_is_taken_over(session: Session) -> None:
    _acquire(session, "replica-a")

    taken = _acquire(session, "replica-b", after=TTL)
    lease = get_lease(session, name="scheduler")

    assert taken is True
    assert lease is not None
    assert lease.holder == "replica-b"
    assert lease.acquired_at == NOW + timedelta(seconds=TTL)


def test_renewal_before_expiry_keeps_lease(session: Session) -> None:
    _acquire(session, "replica-a")
    renewed = _acquire(session, "replica-a", after=5)

    assert renewed is True
    assert _acquire(session, "replica-b", after=TTL + 1) is False
    assert _acquire(session, "replica-b", after=TTL + 5) is True


def test_renewal_keeps_first_acquired_time(session: Session) -> None:
    _acquire(session, "replica-a")
    _acquire(session, "replica-a", after=5)

    lease = get_lease(session, name="scheduler")

    assert lease is not None
    assert lease.acquired_at == NOW
    assert lease.expires_at == NOW + timedelta(seconds=5 + TTL)


def test_old_holder_loses_taken_lease(session: Session) -> None:
    _acquire(session, "replica-a")
    _acquire(session, "replica-b", after=TTL + 1)

    assert _acquire(session, "replica-a", after=TTL + 2) is False


def test_release_frees_lease_at_once(session: Session) -> None:
    _acquire(session, "replica-a")

    released = release_lease(session, name="scheduler", holder="replica-a")

    assert released is True
    assert get_lease(session, name="scheduler") is None
    assert _acquire(session, "replica-b", after=1) is True


def test_release_by_other_holder_changes_nothing(session: Session) -> None:
    _acquire(session, "replica-a")

    released = release_lease(session, name="scheduler", holder="replica-b")

    assert released is False
    assert _acquire(session, "replica-b", after=1) is False


def test_leases_with_other_names_are_independent(session: Session) -> None:
    _acquire(session, "replica-a")

    other = acquire_lease(
        session, name="model-training", holder="replica-b", ttl_seconds=TTL, now=NOW
    )

    assert other is True


def test_acquire_rejects_zero_ttl(session: Session) -> None:
    with pytest.raises(ValueError, match="ttl_seconds must be positive"):
        acquire_lease(
            session, name="scheduler", holder="replica-a", ttl_seconds=0, now=NOW
        )


def test_racing_replicas_get_one_lease(migrated_engine: Engine) -> None:
    factory = session_factory(migrated_engine)
    barrier = threading.Barrier(4)
    results: dict[str, bool] = {}

    def race(holder: str) -> None:
        barrier.wait(timeout=10)
        with factory.begin() as session:
            results[holder] = _acquire(session, holder)

    threads = [threading.Thread(target=race, args=(f"replica-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 4
    assert sum(results.values()) == 1


def test_job_slot_is_claimed_once(session: Session) -> None:
    slot = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)

    first = claim_job_slot(session, job="poll-jira", slot_start=slot, holder="a")
    second = claim_job_slot(session, job="poll-jira", slot_start=slot, holder="b")

    assert first is True
    assert second is False


def test_next_job_slot_is_claimable(session: Session) -> None:
    slot = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    claim_job_slot(session, job="poll-jira", slot_start=slot, holder="a")

    later = slot + timedelta(minutes=1)

    assert claim_job_slot(session, job="poll-jira", slot_start=later, holder="b")


def test_other_job_same_slot_is_claimable(session: Session) -> None:
    slot = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    claim_job_slot(session, job="poll-jira", slot_start=slot, holder="a")

    assert claim_job_slot(session, job="escalate", slot_start=slot, holder="a")


def test_claimed_slot_records_holder(session: Session) -> None:
    slot = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    ran_at = slot + timedelta(seconds=2)

    claim_job_slot(session, job="poll-jira", slot_start=slot, holder="a", now=ran_at)
    row = session.execute(select(job_runs)).one()

    assert row.holder == "a"
    assert row.slot_start == slot
    assert row.ran_at == ran_at


def test_job_slot_start_floors_to_interval() -> None:
    now = datetime(2025, 3, 1, 10, 7, 42, 123456, tzinfo=UTC)

    slot = job_slot_start(now=now, interval_seconds=300)

    assert slot == datetime(2025, 3, 1, 10, 5, tzinfo=UTC)


def test_job_slot_start_same_within_interval() -> None:
    start = job_slot_start(now=NOW, interval_seconds=60)
    end = job_slot_start(now=NOW + timedelta(seconds=59.999), interval_seconds=60)

    assert start == end


def test_prune_drops_old_job_runs(session: Session) -> None:
    for minutes in range(5):
        slot = NOW + timedelta(minutes=minutes)
        claim_job_slot(session, job="poll-jira", slot_start=slot, holder="a")

    deleted = prune_job_runs(session, before=NOW + timedelta(minutes=3))
    left = session.execute(select(func.count()).select_from(job_runs)).scalar_one()

    assert deleted == 3
    assert left == 2


def test_database_now_is_aware_utc_and_current(session: Session) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    now = database_now(session)
    after = datetime.now(UTC) + timedelta(seconds=5)

    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after
