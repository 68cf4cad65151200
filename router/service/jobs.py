"""The periodic jobs every deployment runs, once per interval across all replicas."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from router.escalation.settings import EscalationSettings
from router.escalation.timers import run_timers
from router.service.scheduler import LeasedScheduler
from router.service.transactions import write_transaction
from router.store.leases import prune_job_runs

if TYPE_CHECKING:
    from router.service.runtime import ServiceRuntime

logger = logging.getLogger(__name__)

QUEUE_REPORT_JOB = "queue-report"
PRUNE_JOB = "job-runs-prune"
PRUNE_INTERVAL_SECONDS = 3600.0
ESCALATION_JOB = "escalation-timers"
# Job runs are kept this long, which is plenty to audit a handover.
JOB_RUN_RETENTION = timedelta(days=1)


def register_default_jobs(
    scheduler: LeasedScheduler, *, runtime: ServiceRuntime
) -> None:
    """Register the queue report and the pruning of old job runs."""
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
        ESCALATION_JOB,
        lambda: run_escalation_timers(runtime),
        interval_seconds=EscalationSettings().escalation_tick_seconds,
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


def run_escalation_timers(runtime: ServiceRuntime) -> None:
    """Fire the due escalation timers and record SLA breaches, in one transaction."""
    with write_transaction(runtime.session_factory) as session:
        run_timers(session, now=datetime.now(UTC))
