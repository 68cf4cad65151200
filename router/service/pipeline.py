"""Run the inbox worker and the outbox dispatcher in a child process.

CPython runs the Python code of one process on one core at a time. Under load,
acknowledging webhooks (the event loop and the group-commit writer) takes most of
a core, and so do routing and delivering (the worker and the dispatcher). In one
process they take turns holding the interpreter lock, and each event then costs
several times its CPU time in latency. So `opsroute serve` runs the worker and the
dispatcher in a child process started with `spawn`, and the parent keeps the HTTP
server, the writer, the scheduler and the database probe.

The child reads the same settings, loads the active model from the store, and sends
its metric updates to the parent over a pipe, so `/metrics` of the parent counts
them. On Linux the kernel kills the child when the parent dies (PR_SET_PDEATHSIG),
so a kill -9 of a replica takes its child along. Elsewhere the child checks its
parent's pid every 0.2 s and stops when the parent is gone. A child that exits on
its own is started again after a growing delay.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, NamedTuple, cast

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from router.classification.registry import load_model
from router.enrichment.registry import build_pipeline
from router.escalation.notifiers import deliverers
from router.escalation.records import use_mappings
from router.intake.plugin import load_connectors, load_notifiers
from router.mapping import MappingSet, load_mappings
from router.routing import TicketRouter
from router.service.dispatcher import BackoffPolicy, OutboxDispatcher
from router.service.logs import configure_logging, describe_error
from router.service.metrics import ServiceMetrics
from router.service.settings import ServiceSettings
from router.service.worker import InboxWorker, WakeEvent
from router.store import db
from router.store.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

# Seconds between two batches of metric updates sent to the parent.
FLUSH_SECONDS = 0.2
# Seconds the parent waits before it starts a child that exited, by restart count.
RESTART_DELAYS_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
# Seconds a child may take to stop after SIGTERM before it is killed.
STOP_TIMEOUT_SECONDS = 15.0
# prctl(2) option that sends a signal to this process when its parent dies.
PR_SET_PDEATHSIG = 1


class MetricUpdate(NamedTuple):
    """One call on a metric of `ServiceMetrics`, recorded in the child."""

    name: str
    labels: tuple[tuple[str, str], ...]
    method: str
    value: float


class _RelayedMetric:
    """A stand-in for a prometheus metric that records each call as an update."""

    def __init__(
        self,
        updates: list[MetricUpdate],
        name: str,
        labels: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._updates = updates
        self._name = name
        self._labels = labels

    def labels(self, **labels: str) -> _RelayedMetric:
        return _RelayedMetric(self._updates, self._name, tuple(sorted(labels.items())))

    def inc(self, amount: float = 1.0) -> None:
        self._record("inc", amount)

    def observe(self, value: float) -> None:
        self._record("observe", value)

    def set(self, value: float) -> None:
        self._record("set", value)

    def _record(self, method: str, value: float) -> None:
        # list.append is atomic in CPython, so threads need no lock here.
        self._updates.append(MetricUpdate(self._name, self._labels, method, value))


class MetricsRelay:
    """The child's metrics: each attribute of `ServiceMetrics` records its updates."""

    def __init__(self) -> None:
        self._updates: list[MetricUpdate] = []

    def __getattr__(self, name: str) -> _RelayedMetric:
        if name.startswith("_"):
            raise AttributeError(name)
        return _RelayedMetric(self._updates, name)

    def drain(self) -> list[MetricUpdate]:
        """Return the updates recorded since the last call, oldest first."""
        # The copy and the deletion are each atomic in CPython, and updates
        # appended in between stay in the list for the next call.
        count = len(self._updates)
        updates = self._updates[:count]
        del self._updates[:count]
        return updates

    def as_metrics(self) -> ServiceMetrics:
        """Return this relay typed as the metrics the worker and dispatcher take."""
        return cast(ServiceMetrics, self)


def apply_updates(metrics: ServiceMetrics, updates: Sequence[MetricUpdate]) -> None:
    """Replay the child's metric updates on the parent's metrics."""
    for update in updates:
        metric: Any = getattr(metrics, update.name, None)
        if metric is None:
            logger.warning("Ignoring an update of unknown metric %s", update.name)
            continue
        if update.labels:
            metric = metric.labels(**dict(update.labels))
        getattr(metric, update.method)(update.value)


class PipeWake:
    """A wake-up from the parent to the child, over a pipe instead of a semaphore.

    A `multiprocessing.Event` would do, but its five semaphores outlive a
    parent stopped by a signal, and Python's resource tracker then warns about
    leaked semaphores at every shutdown. `set` writes one byte without blocking,
    and a full pipe already means a wake-up is pending; `wait` and `clear` read
    in the child. Only the parent sets it, and only the child waits.
    """

    def __init__(self, context: Any) -> None:
        self._reader, writer = context.Pipe(duplex=False)
        os.set_blocking(writer.fileno(), False)
        self._writer: Connection | None = writer

    def set(self) -> None:
        if self._writer is None:
            # In the child, which stops by its own event.
            return
        try:
            os.write(self._writer.fileno(), b"\x01")
        except (BlockingIOError, OSError):
            pass

    def wait(self, timeout: float | None = None) -> bool:
        return bool(self._reader.poll(timeout))

    def clear(self) -> None:
        descriptor = self._reader.fileno()
        os.set_blocking(descriptor, False)
        try:
            while os.read(descriptor, 4096):
                pass
        except BlockingIOError:
            pass

    def __getstate__(self) -> dict[str, Any]:
        # Only the reading end goes to the child; the parent keeps the writer.
        return {"_reader": self._reader, "_writer": None}


@dataclass
class PipelineState:
    """The parent's view of its child (alive, pid, model, restarts), for /readyz."""

    alive: bool = False
    pid: int | None = None
    model_version: str | None = None
    restarts: int = 0
    last_exit_code: int | None = None


class PipelineProcess:
    """The parent's handle on the child that runs the worker and the dispatcher."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        metrics: ServiceMetrics,
        log_level: int | None = None,
        log_format: str = "kv",
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._log_level = log_level
        self._log_format = log_format
        self._context = multiprocessing.get_context("spawn")
        # Set by the parent's inbox writer after each commit; the child's worker
        # waits on it when idle.
        self.inbox_wake = PipeWake(self._context)
        self._process: Any = None
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self.state = PipelineState()

    def start(self) -> None:
        """Start the child, and a thread that restarts it when it exits."""
        self._stop.clear()
        self._monitor = threading.Thread(
            target=self._supervise, name="pipeline-monitor", daemon=True
        )
        self._monitor.start()

    def stop(self) -> None:
        """Ask the child to finish its batches and stop; kill it if it hangs."""
        self._stop.set()
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()
            process.join(STOP_TIMEOUT_SECONDS)
            if process.is_alive():
                logger.error(
                    "Pipeline process %s did not stop within %.0f s; killing it",
                    process.pid,
                    STOP_TIMEOUT_SECONDS,
                )
                process.kill()
                process.join(STOP_TIMEOUT_SECONDS)
        if self._monitor is not None:
            self._monitor.join(STOP_TIMEOUT_SECONDS)

    def _supervise(self) -> None:
        while not self._stop.is_set():
            receiver, sender = self._context.Pipe(duplex=False)
            process = self._context.Process(
                target=run_pipeline,
                args=(
                    self._settings,
                    os.getpid(),
                    sender,
                    self.inbox_wake,
                    self._log_level,
                    self._log_format,
                ),
                name="opsroute-pipeline",
                daemon=True,
            )
            process.start()
            sender.close()
            self._process = process
            self.state.alive = True
            self.state.pid = process.pid
            # The new child reports its model again once it has loaded it.
            self.state.model_version = None
            logger.info("Started pipeline process %s", process.pid)
            self._read(receiver)
            process.join()
            self.state.alive = False
            self.state.last_exit_code = process.exitcode
            if self._stop.is_set():
                break
            delay = RESTART_DELAYS_SECONDS[
                min(self.state.restarts, len(RESTART_DELAYS_SECONDS) - 1)
            ]
            self.state.restarts += 1
            logger.error(
                "Pipeline process %s exited with code %s; starting another in %.0f s",
                process.pid,
                process.exitcode,
                delay,
            )
            self._stop.wait(delay)

    def _read(self, receiver: Connection) -> None:
        with receiver:
            for kind, body in _messages(receiver):
                if kind == "metrics":
                    apply_updates(self._metrics, body)
                elif kind == "model":
                    self.state.model_version = str(body)


def _messages(receiver: Connection) -> Iterator[tuple[str, Any]]:
    while True:
        try:
            message = receiver.recv()
        except (EOFError, OSError):
            return
        yield message


def run_pipeline(
    settings: ServiceSettings,
    parent: int,
    sender: Connection,
    inbox_wake: WakeEvent,
    log_level: int | None,
    log_format: str,
) -> None:
    """Run the worker and the dispatcher until SIGTERM or the death of `parent`.

    `parent` is the parent's pid, passed in because the parent may die while
    this process still imports its modules, before PR_SET_PDEATHSIG is set.
    """
    _die_with_parent()
    if os.getppid() != parent:
        return
    if log_level is not None:
        configure_logging(level=log_level, log_format=log_format)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    # `router.service.runtime` imports this module, so it is imported here.
    from router.service.runtime import make_service_engine

    relay = MetricsRelay()
    engine = make_service_engine(settings.database_url)
    session_factory = db.session_factory(engine)
    mappings = load_mappings(settings.mappings_dir)
    use_mappings(mappings)
    connectors = load_connectors(settings, mappings=mappings)
    worker_id = f"{settings.replica_id}/pipeline"
    outbox_wake = threading.Event()
    worker = InboxWorker(
        session_factory=session_factory,
        connectors=connectors,
        mappings=mappings,
        router=None,
        worker_id=worker_id,
        batch_size=settings.worker_batch_size,
        poll_seconds=settings.worker_poll_seconds,
        metrics=relay.as_metrics(),
        wake=inbox_wake,
        on_actions=outbox_wake.set,
    )
    dispatcher = OutboxDispatcher(
        session_factory=session_factory,
        # Notifiers deliver `notification` actions alongside the connectors.
        connectors=deliverers(
            connectors,
            load_notifiers(session_factory=session_factory, mappings=mappings),
        ),
        worker_id=worker_id,
        backoff=BackoffPolicy(
            base_seconds=settings.dispatch_backoff_base_seconds,
            max_seconds=settings.dispatch_backoff_max_seconds,
            max_attempts=settings.dispatch_max_attempts,
        ),
        batch_size=settings.dispatcher_batch_size,
        threads=settings.dispatcher_threads,
        poll_seconds=settings.dispatcher_poll_seconds,
        claim_seconds=settings.dispatch_claim_seconds,
        metrics=relay.as_metrics(),
        wake=outbox_wake,
    )
    dispatcher.start()
    # The worker starts once the model is loaded (in `_load_router`).
    loader = threading.Thread(
        target=_load_router,
        kwargs={
            "worker": worker,
            "session_factory": session_factory,
            "settings": settings,
            "mappings": mappings,
            "sender": sender,
            "stop": stop,
        },
        name="model-loader",
        daemon=True,
    )
    loader.start()
    try:
        while not stop.wait(FLUSH_SECONDS):
            if os.getppid() != parent:
                logger.error("The parent of pipeline process %s died", os.getpid())
                break
            _send(sender, ("metrics", relay.drain()))
    finally:
        worker.stop()
        dispatcher.stop()
        _send(sender, ("metrics", relay.drain()))
        sender.close()
        engine.dispose()


def _load_router(
    *,
    worker: InboxWorker,
    session_factory: sessionmaker[Session],
    settings: ServiceSettings,
    mappings: MappingSet,
    sender: Connection,
    stop: threading.Event,
) -> None:
    while not stop.is_set():
        try:
            with session_factory() as session:
                model = load_model(session, cache_dir=settings.model_cache_dir)
        except ModelNotFoundError:
            stop.wait(settings.model_poll_seconds)
            continue
        except SQLAlchemyError as error:
            logger.warning("Cannot load the model yet: %s", describe_error(error))
            stop.wait(settings.model_poll_seconds)
            continue
        worker.router = TicketRouter(
            model=model,
            mappings=mappings,
            enrichment=build_pipeline(
                mappings.enrichment, session_factory=session_factory
            ),
        )
        worker.start()
        logger.info("Pipeline routing with model %s", model.version)
        _send(sender, ("model", model.version))
        return


def _send(sender: Connection, message: tuple[str, Any]) -> None:
    kind, body = message
    if kind == "metrics" and not body:
        return
    try:
        sender.send(message)
    except (BrokenPipeError, OSError):
        # The parent is gone; the loop notices it by its pid.
        pass


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    library = ctypes.util.find_library("c")
    if library is None:
        return
    libc = ctypes.CDLL(library, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        logger.warning(
            "prctl(PR_SET_PDEATHSIG) failed with errno %d; the pipeline process "
            "notices its parent's death within %.1f s instead",
            ctypes.get_errno(),
            FLUSH_SECONDS,
        )
