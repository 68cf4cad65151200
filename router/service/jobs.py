"""The periodic jobs every deployment runs, once per interval across all replicas."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from router.analytics.notify import queue_drift_summary
from router.escalation.settings import EscalationSettings
from router.escalation.timers import run_timers
from router.intake.plugin import PollingConnector
from router.service.logs import describe_error
from router.service.polling import ConnectorPoller
from router.service.scheduler import LeasedScheduler
from router.service.transactions import write_transaction
from router.store.connector_state import list_connector_states
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
ESCALATION_JOB = "escalation-timers"
# Job runs are kept this long, which is plenty to audit a handover.
JOB_RUN_RETENTION = timedelta(days=1)


def register_default_jobs(
    scheduler: LeasedScheduler, *, runtime: ServiceRuntime
) -> None:
    """Register the queue report, job-run pruning, drift review, escalation timers
    and the polls."""
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
    scheduler.add_job(
        ESCALATION_JOB,
        lambda: run_escalation_timers(runtime),
        interval_seconds=EscalationSettings().escalation_tick_seconds,
    )
    register_poll_jobs(scheduler, runtime=runtime)


def register_poll_jobs(scheduler: LeasedScheduler, *, runtime: ServiceRuntime) -> None:
    """Register one poll job per connector whose `poll` setting is on."""
    poller = ConnectorPoller(
        session_factory=runtime.session_factory,
        max_records=runtime.settings.poll_max_records,
    )
    for (system, instance), connector in sorted(runtime.connectors.items()):
        settings = getattr(connector, "settings", None)
        if not isinstance(connector, PollingConnector) or not getattr(
            settings, "poll", False
        ):
            continue
        scheduler.add_job(
            poll_job_name(system, instance),
            partial(_poll_once, poller, connector),
            interval_seconds=runtime.settings.poll_interval_seconds,
        )
        logger.info(
            "Polling %s/%s every %g s",
            system,
            instance,
            runtime.settings.poll_interval_seconds,
        )


def poll_job_name(system: str, instance: str) -> str:
    """Return the name of a connector's poll job, such as `poll-jira-default`."""
    return f"poll-{system}-{instance}"


def _poll_once(poller: ConnectorPoller, connector: PollingConnector) -> None:
    poller.poll(connector)


def read_connector_health(runtime: ServiceRuntime) -> dict[str, dict[str, Any]]:
    """Return the stored poll state of each connector, for /readyz.

    Errors of the database are logged and give an empty result, because the
    probe that calls this must not stop.
    """
    try:
        with runtime.session_factory() as session:
            states = list_connector_states(session)
    except SQLAlchemyError as error:
        logger.warning("Cannot read the connector states: %s", describe_error(error))
        return {}
    return {
        state.name: {
            "healthy": state.healthy,
            "paused": state.paused,
            "observe_only": state.observe_only,
            "watermark": state.watermark.isoformat() if state.watermark else None,
            "last_error": state.last_error,
        }
        for state in states
    }


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


def run_escalation_timers(runtime: ServiceRuntime) -> None:
    """Fire the due escalation timers and record SLA breaches, in one transaction."""
    with write_transaction(runtime.session_factory) as session:
        run_timers(session, now=datetime.now(UTC))
