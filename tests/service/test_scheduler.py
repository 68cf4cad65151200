"""The leased scheduler: one run per interval across replicas, and failover."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from router.service.scheduler import LeasedScheduler
from router.store.db import make_engine, session_factory, upgrade
from router.store.models import job_runs

INTERVAL = 1.0
TTL = 1.5


class RunLog:
    """The replicas that ran the job, in order."""

    def __init__(self) -> None:
        self.holders: list[str] = []
        self._lock = threading.Lock()

    def job_for(self, holder: str) -> object:
        def job() -> None:
            with self._lock:
                self.holders.append(holder)

        return job


@pytest.fixture
def shared(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine: Engine = make_engine(database_url)
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def replica(
    shared: sessionmaker[Session], holder: str, runs: RunLog
) -> LeasedScheduler:
    scheduler = LeasedScheduler(session_factory=shared, holder=holder, ttl_seconds=TTL)
    job = runs.job_for(holder)
    assert callable(job)
    scheduler.add_job("heartbeat", job, interval_seconds=INTERVAL)
    return scheduler


def slots(shared: sessionmaker[Session]) -> list[datetime]:
    with shared() as session:
        return list(
            session.execute(
                select(job_runs.c.slot_start)
                .where(job_runs.c.job == "heartbeat")
                .order_by(job_runs.c.slot_start)
            ).scalars()
        )


def test_two_replicas_fire_once_per_interval(shared: sessionmaker[Session]) -> None:
    runs = RunLog()
    replicas = [replica(shared, name, runs) for name in ("replica-a", "replica-b")]
    for scheduler in replicas:
        scheduler.start()
    time.sleep(5.5)
    for scheduler in replicas:
        scheduler.stop()

    claimed = slots(shared)
    gaps = {(b - a).total_seconds() for a, b in zip(claimed, claimed[1:], strict=False)}
    assert len(runs.holders) == len(claimed)
    assert len(claimed) >= 4
    # A slot is skipped, never doubled, when a loaded machine delays a run.
    assert min(gaps) == INTERVAL
    assert len(set(runs.holders)) == 1


def test_other_replica_takes_over_after_crash(shared: sessionmaker[Session]) -> None:
    runs = RunLog()
    first = replica(shared, "replica-a", runs)
    first.start()
    time.sleep(0.5)
    second = replica(shared, "replica-b", runs)
    second.start()
    time.sleep(2.2)
    # Stopping without releasing the lease is what a killed process leaves behind.
    first.stop(release=False)
    crashed_at = time.monotonic()
    deadline = crashed_at + TTL + TTL / 3 + INTERVAL + 2.0
    while time.monotonic() < deadline and "replica-b" not in runs.holders:
        time.sleep(0.05)
    took_over_after = time.monotonic() - crashed_at
    second.stop()

    assert runs.holders[0] == "replica-a"
    assert "replica-b" in runs.holders
    assert took_over_after <= TTL + TTL / 3 + INTERVAL + 1.5
    assert len(runs.holders) == len(slots(shared))


def test_graceful_stop_hands_lease_over_at_once(
    shared: sessionmaker[Session],
) -> None:
    runs = RunLog()
    first = replica(shared, "replica-a", runs)
    second = replica(shared, "replica-b", runs)
    assert first.renew()
    assert not second.renew()
    first.stop()
    assert second.renew()


def test_job_runs_only_for_leader(shared: sessionmaker[Session]) -> None:
    ran: list[str] = []
    leader = LeasedScheduler(session_factory=shared, holder="replica-a")
    follower = LeasedScheduler(session_factory=shared, holder="replica-b")
    for scheduler in (leader, follower):
        holder = scheduler.holder
        scheduler.add_job(
            "hourly", lambda holder=holder: ran.append(holder), interval_seconds=3600
        )
    leader.renew()
    follower.renew()
    assert not follower.run_job("hourly")
    assert leader.run_job("hourly")
    assert not leader.run_job("hourly")
    assert ran == ["replica-a"]


def test_failing_job_keeps_scheduler_running(shared: sessionmaker[Session]) -> None:
    calls: list[float] = []

    def failing() -> None:
        calls.append(time.monotonic())
        raise RuntimeError("the job broke")

    scheduler = LeasedScheduler(
        session_factory=shared, holder="replica-a", ttl_seconds=TTL
    )
    scheduler.add_job("broken", failing, interval_seconds=0.5)
    scheduler.start()
    time.sleep(2.2)
    scheduler.stop()
    assert len(calls) >= 3


def test_duplicate_job_name_is_rejected(shared: sessionmaker[Session]) -> None:
    scheduler = LeasedScheduler(session_factory=shared, holder="replica-a")
    scheduler.add_job("heartbeat", lambda: None, interval_seconds=1)
    with pytest.raises(ValueError, match="already registered"):
        scheduler.add_job("heartbeat", lambda: None, interval_seconds=1)
