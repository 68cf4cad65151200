"""The inbox worker: route stored events and queue their write-backs.

A batch is claimed, planned (records turned into tickets, tickets routed) and
applied: the decisions stored, one write-back queued per auto-routed decision and
the events marked, in one transaction that commits all of it or nothing.

On PostgreSQL the claim, the plan and the apply share that transaction, and the
claimed rows stay locked (`FOR UPDATE SKIP LOCKED`) until it ends, so a killed
replica's events go back to the others. SQLite has one writer at a time, and
routing a batch takes about a tenth of a second. So on SQLite the claim commits on
its own, the routing runs outside any write lock, and the apply runs under BEGIN
IMMEDIATE. Events still pending after a crash are claimed again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from router.intake.plugin import Connector
from router.mapping import MappingSet
from router.routing import TicketRouter
from router.service.logs import describe_error
from router.service.metrics import ServiceMetrics
from router.service.planning import EventPlan, Planner, PlanOutcome
from router.service.storing import ConcurrentClaimError, apply_plans
from router.service.transactions import write_transaction
from router.store.inbox import claim_inbox_events
from router.store.records import InboxEvent

logger = logging.getLogger(__name__)

# Seconds the worker waits after a database error before it claims again.
ERROR_BACKOFF_SECONDS = 1.0
# While webhooks arrive, the worker pauses this many times as long as its last
# batch took, so acknowledging gets most of the interpreter (the GIL) and routing
# catches up when the burst ends.
INTAKE_PRIORITY_FACTOR = 3.0


class WakeEvent(Protocol):
    """An event another thread or process sets when there is new work.

    Both `threading.Event` and `multiprocessing.Event` fit.
    """

    def set(self) -> None: ...
    def clear(self) -> None: ...
    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass
class BatchOutcome:
    """Counts of one batch, for logs and tests."""

    claimed: int = 0
    decided: int = 0
    skipped: int = 0
    failed: int = 0
    actions: int = 0
    action_ids: list[int] = field(default_factory=list)


class InboxWorker:
    """Claim and route inbox events in batches, on a thread or by direct calls."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        connectors: Mapping[tuple[str, str], Connector],
        mappings: MappingSet,
        router: TicketRouter | None,
        worker_id: str,
        batch_size: int = 200,
        poll_seconds: float = 0.2,
        metrics: ServiceMetrics | None = None,
        intake_busy: Callable[[], bool] | None = None,
        wake: WakeEvent | None = None,
        on_actions: Callable[[], None] | None = None,
    ) -> None:
        """Set up the worker; `start` starts its thread.

        Args:
            intake_busy: returns whether webhooks are being stored right now, so
                that a worker sharing the process yields to them.
            wake: set by the inbox writer after each commit; an idle worker
                claims as soon as it is set instead of at its next poll.
            on_actions: called after a batch that queued outbox actions, to wake
                the dispatcher.
        """
        self._session_factory = session_factory
        self._intake_busy = intake_busy
        self._wake = wake
        self._on_actions = on_actions
        self._connectors = connectors
        self._mappings = mappings
        self.router = router
        self._worker_id = worker_id
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._metrics = metrics or ServiceMetrics()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start routing on a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="worker", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Finish the current batch and stop."""
        self._stop.set()
        if self._wake is not None:
            self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        logger.info("Inbox worker %s started", self._worker_id)
        while not self._stop.is_set():
            if self.router is None:
                self._stop.wait(self._poll_seconds)
                continue
            started = time.monotonic()
            if self._wake is not None:
                # Cleared before the claim, so a commit after it wakes the next wait.
                self._wake.clear()
            try:
                outcome = self.process_batch()
            except (SQLAlchemyError, ConcurrentClaimError) as error:
                logger.warning(
                    "Inbox batch failed, retrying: %s", describe_error(error)
                )
                self._stop.wait(ERROR_BACKOFF_SECONDS)
                continue
            if outcome.actions and self._on_actions is not None:
                self._on_actions()
            if (
                outcome.claimed
                and self._intake_busy is not None
                and self._intake_busy()
            ):
                # NOTE: Under a sustained webhook load that takes the whole
                # interpreter, routing runs at about a quarter of its speed and
                # the inbox grows until the load drops.
                elapsed = time.monotonic() - started
                self._stop.wait(elapsed * INTAKE_PRIORITY_FACTOR)
            elif outcome.claimed < self._batch_size:
                (self._wake or self._stop).wait(self._poll_seconds)
        logger.info("Inbox worker %s stopped", self._worker_id)

    def process_batch(self) -> BatchOutcome:
        """Claim, route and mark one batch of pending events.

        Raises:
            RuntimeError: no routing model is loaded yet.
            SQLAlchemyError: the database failed; nothing of the batch is stored.
            ConcurrentClaimError: another process finished some of the events
                first (SQLite only); nothing of the batch is stored.
        """
        router = self.router
        if router is None:
            raise RuntimeError("No routing model is loaded yet; wait for start-up.")
        planner = Planner(
            router=router, connectors=self._connectors, mappings=self._mappings
        )
        if self._session_factory.kw["bind"].dialect.name == "sqlite":
            outcome = self._process_outside_lock(planner)
        else:
            outcome = self._process_in_one_transaction(planner)
        if outcome.claimed:
            self._log(outcome)
        return outcome

    def _process_in_one_transaction(self, planner: Planner) -> BatchOutcome:
        with write_transaction(self._session_factory) as session:
            events = self._claim(session)
            if not events:
                return BatchOutcome()
            plans = planner.plan(session, events, decided_at=datetime.now(UTC))
            return self._apply(session, plans, claimed=len(events))

    def _process_outside_lock(self, planner: Planner) -> BatchOutcome:
        with write_transaction(self._session_factory) as session:
            events = self._claim(session)
        if not events:
            return BatchOutcome()
        with self._session_factory() as session:
            plans = planner.plan(session, events, decided_at=datetime.now(UTC))
        with write_transaction(self._session_factory) as session:
            return self._apply(session, plans, claimed=len(events))

    def _claim(self, session: Session) -> list[InboxEvent]:
        return claim_inbox_events(
            session, limit=self._batch_size, worker=self._worker_id
        )

    def _apply(
        self, session: Session, plans: Sequence[EventPlan], *, claimed: int
    ) -> BatchOutcome:
        applied = apply_plans(session, plans)
        outcome = BatchOutcome(
            claimed=claimed,
            decided=applied.decided,
            skipped=applied.skipped,
            failed=applied.failed,
            actions=len(applied.action_ids),
            action_ids=applied.action_ids,
        )
        for plan in plans:
            if plan.outcome is PlanOutcome.ROUTE and plan.decision is not None:
                decision = plan.decision
                self._metrics.decisions.labels(action=decision.action.value).inc()
                waited = (decision.decided_at - plan.event.received_at).total_seconds()
                self._metrics.decision_latency.observe(max(0.0, waited))
            elif plan.outcome is PlanOutcome.FAIL:
                self._metrics.events_failed.labels(system=plan.event.system).inc()
        return outcome

    def _log(self, outcome: BatchOutcome) -> None:
        logger.info(
            "Routed batch: claimed=%d decided=%d skipped=%d failed=%d actions=%d",
            outcome.claimed,
            outcome.decided,
            outcome.skipped,
            outcome.failed,
            outcome.actions,
        )
