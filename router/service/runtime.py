"""Start and stop the background parts of one replica, and report their state.

The group-commit writer starts at once, and webhooks get 503 until the tables
exist. The dispatcher and the scheduler start once the migrations are applied, and
the worker once the model is loaded. By default the worker and the dispatcher run
in a child process (see `router.service.pipeline`), started once the migrations
are applied; it loads the model itself. A probe thread pings the database every second
and refreshes the queue depth gauges, so /readyz and /metrics never wait on the
database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from router.escalation.notifiers import deliverers
from router.escalation.records import use_mappings
from router.intake.plugin import Connector, load_connectors, load_notifiers
from router.mapping import MappingSet, load_mappings
from router.routing import TicketRouter
from router.service.bootstrap import Bootstrap, StartupState
from router.service.dispatcher import BackoffPolicy, OutboxDispatcher
from router.service.jobs import read_connector_health, register_default_jobs
from router.service.logs import describe_error, logging_configuration
from router.service.metrics import ServiceMetrics
from router.service.pipeline import PipelineProcess
from router.service.scheduler import LeasedScheduler
from router.service.settings import ServiceSettings
from router.service.worker import InboxWorker, WakeEvent
from router.service.writer import InboxWriter, InsertFunction, insert_with_store
from router.store import db
from router.store.inbox import count_pending_inbox
from router.store.outbox import count_actions
from router.store.records import ActionStatus

logger = logging.getLogger(__name__)

# Seconds between two database probes, and how old a probe may be for /readyz.
PROBE_SECONDS = 1.0
PROBE_STALE_SECONDS = 5.0
# Seconds a PostgreSQL connection attempt may take before it fails.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5


@dataclass
class DatabaseProbe:
    """The last database ping: whether it worked, the error, and when."""

    reachable: bool = False
    detail: str = "not checked yet"
    checked_at: float = 0.0


def make_service_engine(database_url: str) -> Engine:
    """Create the store's engine, with a connect timeout on PostgreSQL."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        url = url.update_query_dict(
            {"connect_timeout": str(POSTGRES_CONNECT_TIMEOUT_SECONDS)}
        )
    return db.make_engine(url.render_as_string(hide_password=False))


class ServiceRuntime:
    """Everything one replica runs besides the HTTP server."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        connectors: Mapping[tuple[str, str], Connector] | None = None,
        mappings: MappingSet | None = None,
        insert: InsertFunction = insert_with_store,
    ) -> None:
        self.settings = settings
        self.metrics = ServiceMetrics()
        self.engine = make_service_engine(settings.database_url)
        self.session_factory = db.session_factory(self.engine)
        self.mappings = mappings or load_mappings(settings.mappings_dir)
        self.connectors: Mapping[tuple[str, str], Connector] = (
            connectors
            if connectors is not None
            else load_connectors(settings, mappings=self.mappings)
        )
        self.state = StartupState()
        self.probe = DatabaseProbe()
        # Connectors and inserts passed in (by tests) live in this process only,
        # so only a runtime built from settings alone uses the child process.
        self.pipeline: PipelineProcess | None = None
        in_settings_only = connectors is None and insert is insert_with_store
        if settings.pipeline_process and in_settings_only:
            level, log_format = logging_configuration() or (None, "kv")
            self.pipeline = PipelineProcess(
                settings, metrics=self.metrics, log_level=level, log_format=log_format
            )
        # Poll state per "system/instance", refreshed by the probe thread.
        self.connector_health: dict[str, dict[str, Any]] = {}

        # The writer wakes the worker after each commit, and the worker wakes the
        # dispatcher when it queues actions, so an event idles at no poll.
        inbox_wake: WakeEvent = (
            self.pipeline.inbox_wake if self.pipeline is not None else threading.Event()
        )
        outbox_wake = threading.Event()
        self.writer = InboxWriter(
            session_factory=self.session_factory,
            insert=insert,
            max_events=settings.writer_max_events,
            max_wait_seconds=settings.writer_max_wait_seconds,
            max_queue=settings.writer_max_queue,
            metrics=self.metrics,
            on_commit=inbox_wake.set,
        )
        self.bootstrap = Bootstrap(
            settings=settings,
            engine=self.engine,
            session_factory=self.session_factory,
            mappings=self.mappings,
            metrics=self.metrics,
            state=self.state,
            on_migrated=self._start_delivery,
            on_model=self._start_routing,
        )

        self.worker = InboxWorker(
            session_factory=self.session_factory,
            connectors=self.connectors,
            mappings=self.mappings,
            router=None,
            worker_id=settings.replica_id,
            batch_size=settings.worker_batch_size,
            poll_seconds=settings.worker_poll_seconds,
            metrics=self.metrics,
            intake_busy=self.writer.busy,
            wake=inbox_wake,
            on_actions=outbox_wake.set,
        )
        use_mappings(self.mappings)
        self.dispatcher = OutboxDispatcher(
            session_factory=self.session_factory,
            # Notifiers deliver `notification` actions alongside the connectors.
            connectors=deliverers(
                self.connectors,
                load_notifiers(
                    session_factory=self.session_factory, mappings=self.mappings
                ),
            ),
            worker_id=settings.replica_id,
            backoff=BackoffPolicy(
                base_seconds=settings.dispatch_backoff_base_seconds,
                max_seconds=settings.dispatch_backoff_max_seconds,
                max_attempts=settings.dispatch_max_attempts,
            ),
            batch_size=settings.dispatcher_batch_size,
            threads=settings.dispatcher_threads,
            poll_seconds=settings.dispatcher_poll_seconds,
            claim_seconds=settings.dispatch_claim_seconds,
            metrics=self.metrics,
            wake=outbox_wake,
        )
        self.scheduler = LeasedScheduler(
            session_factory=self.session_factory,
            holder=settings.replica_id,
            ttl_seconds=settings.lease_ttl_seconds,
            metrics=self.metrics,
        )
        register_default_jobs(self.scheduler, runtime=self)

        self._stop = threading.Event()
        self._probe_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._started: set[str] = set()

    @property
    def router(self) -> TicketRouter | None:
        """Return the router once the model is loaded."""
        return self.state.router

    def start(self) -> None:
        """Start the writer, the start-up steps and the database probe."""
        logger.info(
            "Starting replica %s on %s",
            self.settings.replica_id,
            self.settings.database_display,
        )
        self.writer.start()
        self._probe_thread = threading.Thread(
            target=self._probe_loop, name="db-probe", daemon=True
        )
        self._probe_thread.start()
        self.bootstrap.start()

    def stop(self) -> None:
        """Stop every part, the webhook writer last, and close the connections."""
        logger.info("Stopping replica %s", self.settings.replica_id)
        self._stop.set()
        self.bootstrap.stop()
        with self._lock:
            started = set(self._started)
        if "scheduler" in started:
            self.scheduler.stop()
        if "worker" in started:
            self.worker.stop()
        if "dispatcher" in started:
            self.dispatcher.stop()
        if "pipeline" in started and self.pipeline is not None:
            self.pipeline.stop()
        self.writer.stop()
        if self._probe_thread is not None:
            self._probe_thread.join(PROBE_SECONDS * 2)
        self.engine.dispose()

    def _start_delivery(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            if self.pipeline is not None:
                self.pipeline.start()
                self._started.add("pipeline")
            else:
                self.dispatcher.start()
                self._started.add("dispatcher")
            self.scheduler.start()
            self._started.add("scheduler")

    def _start_routing(self, router: TicketRouter) -> None:
        with self._lock:
            if self._stop.is_set() or self.pipeline is not None:
                return
            self.worker.router = router
            self.worker.start()
            self._started.add("worker")

    def _probe_loop(self) -> None:
        last_depth = 0.0
        while not self._stop.is_set():
            self._probe_database()
            now = time.monotonic()
            due = now - last_depth >= self.settings.queue_depth_seconds
            if self.probe.reachable and self.bootstrap.migrated and due:
                self.check_migrations()
            if self.probe.reachable and self.state.migrations_current and due:
                self.refresh_queue_depth()
                self.connector_health = read_connector_health(self)
                last_depth = now
            self._stop.wait(PROBE_SECONDS)

    def _probe_database(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as error:
            if self.probe.reachable or self.probe.checked_at == 0.0:
                logger.warning("Database unreachable: %s", describe_error(error))
            self.probe = DatabaseProbe(
                reachable=False,
                detail=f"unreachable: {describe_error(error)}",
                checked_at=time.monotonic(),
            )
            return
        if not self.probe.reachable and self.probe.checked_at:
            logger.info("Database reachable again")
        self.probe = DatabaseProbe(
            reachable=True, detail="reachable", checked_at=time.monotonic()
        )

    def check_migrations(self) -> bool:
        """Compare the database's revision with this replica's, after start-up.

        Another replica of a newer release may migrate the shared database, or an
        operator may downgrade it; either way this replica's code no longer fits
        the tables, so `/readyz` reports 503 until the revisions match again.
        """
        try:
            applied = db.current_revision(self.engine)
            pending = db.pending_migrations(self.engine)
        except SQLAlchemyError as error:
            logger.warning("Cannot read the migration state: %s", describe_error(error))
            return self.state.migrations_current
        if pending and self.state.migrations_current:
            head = db.head_revision()
            self.state.migrations_detail = (
                f"the database is at revision {applied}, but this replica expects "
                f"{head}; run the same opsroute release on every replica and "
                "`opsroute db upgrade`"
            )
            logger.error("Migrations differ: %s", self.state.migrations_detail)
        elif not pending and not self.state.migrations_current:
            self.state.migrations_detail = "current"
            logger.info("The database is at this replica's revision again")
        self.state.migrations_current = not pending
        return not pending

    def refresh_queue_depth(self) -> dict[str, int]:
        """Count pending inbox events and pending or dead actions into the gauges."""
        try:
            with self.session_factory() as session:
                depth = {
                    "inbox": count_pending_inbox(session),
                    "outbox": count_actions(session, status=ActionStatus.PENDING),
                    "outbox_dead": count_actions(session, status=ActionStatus.DEAD),
                }
        except SQLAlchemyError as error:
            logger.warning("Cannot count the queues: %s", describe_error(error))
            return {}
        for queue, value in depth.items():
            self.metrics.queue_depth.labels(queue=queue).set(value)
        return depth

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Return whether this replica is ready, and what each part reports."""
        probe = self.probe
        fresh = time.monotonic() - probe.checked_at <= PROBE_STALE_SECONDS
        database_ok = probe.reachable and fresh
        migrations_ok = self.state.migrations_current
        model_ok = self.state.router is not None
        checks: dict[str, Any] = {
            "database": {
                "ok": database_ok,
                "detail": probe.detail if fresh else "no recent check",
            },
            "migrations": {"ok": migrations_ok, "detail": self.state.migrations_detail},
            "model": {
                "ok": model_ok,
                "version": self.state.model_version,
                "detail": self.state.model_detail,
            },
            "connectors": self.connector_states(),
        }
        pipeline_ok = True
        if self.pipeline is not None and migrations_ok:
            pipeline = self.pipeline.state
            # Ready once the child routes: before its model is loaded, a load
            # balancer would send this replica work that only its peers can do.
            routing = pipeline.alive and pipeline.model_version is not None
            pipeline_ok = routing
            if routing:
                detail = "running"
            elif pipeline.alive:
                detail = "loading the model"
            else:
                detail = "restarting"
            checks["pipeline"] = {
                "ok": pipeline_ok,
                "pid": pipeline.pid,
                "model_version": pipeline.model_version,
                "restarts": pipeline.restarts,
                "detail": detail,
            }
        missing = [
            name
            for name, ok in (
                ("database", database_ok),
                ("migrations", migrations_ok),
                ("model", model_ok),
                ("pipeline", pipeline_ok),
            )
            if not ok
        ]
        ready = not missing
        body = {"status": "ready" if ready else "not ready", "missing": missing}
        return ready, body | {"checks": checks}

    def connector_states(self) -> dict[str, dict[str, Any]]:
        """Describe each connector: webhooks accepted or not, write-backs or not."""
        states: dict[str, dict[str, Any]] = {}
        for (system, instance), connector in sorted(self.connectors.items()):
            secret = connector.webhook_secret_setting()
            writes = connector.can_write()
            state: dict[str, Any] = {
                "webhooks": "accepted" if secret is None else "rejected with 503",
                "write_back": "delivered" if writes else "waiting in the outbox",
            }
            if secret is not None:
                state["webhook_secret_missing"] = secret
            if not writes:
                state["missing_settings"] = connector.missing_settings()
            if f"{system}/{instance}" in self.connector_health:
                state["poll"] = self.connector_health[f"{system}/{instance}"]
            states[f"{system}/{instance}"] = state
        return states
