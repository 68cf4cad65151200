"""The periodic jobs every deployment runs, once per interval across all replicas."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from router.analytics.notify import queue_drift_summary
from router.service.scheduler import LeasedScheduler
from router.service.transactions import write_transaction
from router.store.leases import prune_job_runs

if TYPE_CHECKING:
    from router.service.runtime import ServiceRuntime

logger = logging.getLogger(__name__)

QUEUE_REPORT_JOB = "queue-report"
PRUNE_JOB = "job-runs-prune"
PRUNE_INTERVAL_SECONDS = 3600.0
DRIFT_JOB = "drift-review"
# NOTE: Slots are aligned to the Unix epoch, so "monthly" is every 30 days and not
# on a calendar date.
DRIFT_INTERVAL_SECONDS = 30 * 24 * 3600.0
# Job runs are kept this long, which is plenty to audit a handover.
JOB_RUN_RETENTION = timedelta(days=1)


def register_default_jobs(
    scheduler: LeasedScheduler, *, runtime: ServiceRuntime
) -> None:
    """Register the queue report, the pruning of old job runs and the drift review."""
    scheduler.add_job(
        QUEUE_REPORT_JOB,
        lambda: report_queues(runtime),
        interval_seconds=runtime.settings.report_interval_seconds,
    )
    scheduler.add_job(
        PRUNE_JOB,
        lambda: prune_old_job_runs(runtime),
        interval_seconds=PRUNE_INTERVAL_SECONDS,
    )
    scheduler.add_job(
        DRIFT_JOB,
        lambda: review_drift_monthly(runtime),
        interval_seconds=DRIFT_INTERVAL_SECONDS,
    )


def report_queues(runtime: ServiceRuntime) -> None:
    """Log one summary of the queues for the whole deployment."""
    depth = runtime.refresh_queue_depth()
    if not depth:
        return
    log = logger.warning if depth["outbox_dead"] else logger.info
    log(
        "Queues: %d inbox events pending, %d outbox actions pending, %d dead",
        depth["inbox"],
        depth["outbox"],
        depth["outbox_dead"],
    )


def prune_old_job_runs(runtime: ServiceRuntime) -> None:
    """Delete the job-run rows older than the retention period."""
    before = datetime.now(UTC) - JOB_RUN_RETENTION
    with write_transaction(runtime.session_factory) as session:
        deleted = prune_job_runs(session, before=before)
    logger.info("Pruned %d job runs older than %s", deleted, before.isoformat())


def review_drift_monthly(runtime: ServiceRuntime) -> None:
    """Run the drift review and queue its summary for the notifier."""
    with write_transaction(runtime.session_factory) as session:
        queue_drift_summary(session, now=datetime.now(UTC))
