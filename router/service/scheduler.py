"""Periodic jobs that run once across all replicas.

Every replica runs an APScheduler `BackgroundScheduler`. A local job renews the
database lease `scheduler` every third of its time to live, and each periodic job
runs only in the replica that holds it. Before a run, the job claims its
(job, slot start) row, so it fires at most once per interval even while the lease
changes hands. A holder that dies is replaced once its lease expires and another
replica renews next: within ttl + ttl / 3 seconds (20 s with the default 15 s).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from router.service.logs import describe_error
from router.service.metrics import ServiceMetrics
from router.service.transactions import write_transaction
from router.store.leases import (
    acquire_lease,
    claim_job_slot,
    database_now,
    job_slot_start,
    release_lease,
)

logger = logging.getLogger(__name__)

SCHEDULER_LEASE = "scheduler"
RENEW_JOB_ID = "_renew-scheduler-lease"


@dataclass(frozen=True)
class PeriodicJob:
    """A job that runs once per interval across the deployment."""

    name: str
    function: Callable[[], None]
    interval_seconds: float


class LeasedScheduler:
    """An APScheduler scheduler whose jobs run only under the `scheduler` lease.

    Args:
        session_factory: sessions on the shared database.
        holder: this replica's id.
        ttl_seconds: lifetime of the lease; it is renewed every `ttl_seconds / 3`.
    """

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        holder: str,
        ttl_seconds: float = 15.0,
        metrics: ServiceMetrics | None = None,
        lease_name: str = SCHEDULER_LEASE,
    ) -> None:
        self._session_factory = session_factory
        self.holder = holder
        self._ttl = ttl_seconds
        self._metrics = metrics or ServiceMetrics()
        self._lease_name = lease_name
        self._jobs: dict[str, PeriodicJob] = {}
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._lock = threading.Lock()
        # Monotonic time until which the lease is ours; 0 when we do not hold it.
        self._held_until = 0.0

    @property
    def jobs(self) -> list[PeriodicJob]:
        """Return the registered periodic jobs."""
        return list(self._jobs.values())

    @property
    def is_leader(self) -> bool:
        """Return whether this replica holds the lease now."""
        return time.monotonic() < self._held_until

    def add_job(
        self, name: str, function: Callable[[], None], *, interval_seconds: float
    ) -> None:
        """Register a job that runs every `interval_seconds` across the deployment.

        Intervals are aligned to the Unix epoch, so every replica computes the same
        slots. Jobs may be added before or after `start`.

        Raises:
            ValueError: the name is taken or the interval is not positive.
        """
        if name in self._jobs or name == RENEW_JOB_ID:
            raise ValueError(f"Periodic job {name!r} is already registered.")
        if interval_seconds <= 0:
            raise ValueError(
                f"Interval of job {name!r} must be positive, got {interval_seconds}."
            )
        job = PeriodicJob(
            name=name, function=function, interval_seconds=interval_seconds
        )
        self._jobs[name] = job
        now = datetime.now(UTC)
        self._scheduler.add_job(
            self.run_job,
            IntervalTrigger(
                seconds=interval_seconds,
                start_date=job_slot_start(now=now, interval_seconds=interval_seconds),
                timezone=UTC,
            ),
            args=[name],
            id=name,
            name=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(interval_seconds)),
        )

    def start(self) -> None:
        """Start renewing the lease and firing jobs."""
        self._scheduler.add_job(
            self.renew,
            IntervalTrigger(seconds=self._ttl / 3, timezone=UTC),
            id=RENEW_JOB_ID,
            name=RENEW_JOB_ID,
            next_run_time=datetime.now(UTC),
            coalesce=True,
            max_instances=1,
        )
        self._scheduler.start()
        logger.info(
            "Scheduler started with jobs %s (holder=%s)",
            sorted(self._jobs),
            self.holder,
        )

    def stop(self, *, release: bool = True) -> None:
        """Stop firing jobs and give the lease up, so another replica takes it.

        Args:
            release: False keeps the lease until it expires, as a crash would.
        """
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        held, self._held_until = self._held_until, 0.0
        self._metrics.scheduler_leader.set(0)
        if held and release:
            try:
                with write_transaction(self._session_factory) as session:
                    release_lease(session, name=self._lease_name, holder=self.holder)
            except SQLAlchemyError as error:
                logger.warning(
                    "Cannot release lease %s: %s",
                    self._lease_name,
                    describe_error(error),
                )
        logger.info("Scheduler stopped (holder=%s)", self.holder)

    def renew(self) -> bool:
        """Take or renew the lease and return whether this replica holds it."""
        started = time.monotonic()
        was_leader = self.is_leader
        try:
            with write_transaction(self._session_factory) as session:
                held = acquire_lease(
                    session,
                    name=self._lease_name,
                    holder=self.holder,
                    ttl_seconds=self._ttl,
                    now=database_now(session),
                )
        except SQLAlchemyError as error:
            # The lease may still be ours until it expires, which is_leader tracks.
            logger.warning(
                "Cannot renew lease %s: %s", self._lease_name, describe_error(error)
            )
            return self.is_leader
        with self._lock:
            # The lease counts from before the call, so a slow commit never makes
            # it look longer than it is.
            self._held_until = started + self._ttl if held else 0.0
        self._metrics.scheduler_leader.set(1 if held else 0)
        if held and not was_leader:
            logger.info("Took lease %s (holder=%s)", self._lease_name, self.holder)
        elif was_leader and not held:
            logger.warning("Lost lease %s (holder=%s)", self._lease_name, self.holder)
        return held

    def run_job(self, name: str) -> bool:
        """Run a registered job if this replica leads and its slot is unclaimed.

        Returns:
            Whether the job ran.
        """
        job = self._jobs[name]
        if not self.is_leader:
            return False
        try:
            with write_transaction(self._session_factory) as session:
                # Slots follow the database clock, like the lease.
                slot = job_slot_start(
                    now=database_now(session), interval_seconds=job.interval_seconds
                )
                claimed = claim_job_slot(
                    session, job=name, slot_start=slot, holder=self.holder
                )
        except SQLAlchemyError as error:
            logger.warning(
                "Cannot claim a slot of job %s: %s", name, describe_error(error)
            )
            return False
        if not claimed:
            logger.debug("Job %s already ran for slot %s", name, slot.isoformat())
            return False
        self._metrics.scheduler_runs.labels(job=name).inc()
        try:
            job.function()
        except Exception:
            logger.exception("Job %s failed for slot %s", name, slot.isoformat())
        return True
