"""The outbox dispatcher: deliver queued actions through their connectors.

Each round claims due actions (for connectors that have API credentials only, so
the others stay pending), delivers them on a thread pool, and records each outcome:
done, pending again after an exponential backoff with full jitter, or dead after a
permanent error or the last attempt. Delivery is at least once; the connector looks
for the action's marker before each write that is not idempotent.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from router.intake.plugin import (
    Connector,
    DeliveryResult,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from router.service.logs import describe_error
from router.service.metrics import ServiceMetrics
from router.service.transactions import write_transaction
from router.store.outbox import (
    claim_due_actions,
    mark_actions_done,
    park_action_dead,
    reschedule_action,
)
from router.store.records import OutboxAction

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000
ERROR_BACKOFF_SECONDS = 1.0


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential backoff with full jitter, and the attempts before an action dies."""

    base_seconds: float = 1.0
    max_seconds: float = 300.0
    max_attempts: int = 8

    def delay(
        self, attempts: int, *, rng: random.Random, retry_after: float | None = None
    ) -> float:
        """Return the seconds to wait after the given number of failed attempts.

        The delay is drawn uniformly from 0 to min(max, base * 2^(attempts - 1)),
        and is never shorter than a Retry-After the vendor sent (capped at max).
        """
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        drawn = rng.uniform(0, ceiling)
        if retry_after is not None:
            drawn = max(drawn, min(retry_after, self.max_seconds))
        return drawn


@dataclass
class DispatchOutcome:
    """What one round of the dispatcher did."""

    claimed: int = 0
    delivered: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    dead: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Result:
    action: OutboxAction
    delivered: DeliveryResult | None = None
    error: str | None = None
    permanent: bool = False
    retry_after: float | None = None


class OutboxDispatcher:
    """Deliver due outbox actions on a background thread or by direct calls."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        connectors: Mapping[tuple[str, str], Connector],
        worker_id: str,
        backoff: BackoffPolicy,
        batch_size: int = 50,
        threads: int = 8,
        poll_seconds: float = 0.2,
        claim_seconds: float = 120.0,
        metrics: ServiceMetrics | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
        wake: threading.Event | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._connectors = connectors
        # Set by the worker when it queues actions, so an idle dispatcher
        # delivers them at once instead of at its next poll.
        self._wake = wake
        self._worker_id = worker_id
        self._backoff = backoff
        self._batch_size = batch_size
        self._threads = threads
        self._poll_seconds = poll_seconds
        self._claim_seconds = claim_seconds
        self._metrics = metrics or ServiceMetrics()
        self._rng = rng or random.Random()
        self._clock = clock or _utc_now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Start dispatching on a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="dispatcher", daemon=True
        )
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Finish the current round and stop."""
        self._stop.set()
        if self._wake is not None:
            self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def writable_targets(self) -> list[tuple[str, str]]:
        """Return the (system, instance) pairs whose connectors can write."""
        return sorted(key for key, c in self._connectors.items() if c.can_write())

    def _run(self) -> None:
        logger.info("Outbox dispatcher %s started", self._worker_id)
        while not self._stop.is_set():
            if self._wake is not None:
                self._wake.clear()
            try:
                outcome = self.dispatch_once()
            except SQLAlchemyError as error:
                logger.warning(
                    "Outbox round failed, retrying: %s", describe_error(error)
                )
                self._stop.wait(ERROR_BACKOFF_SECONDS)
                continue
            if outcome.claimed < self._batch_size:
                (self._wake or self._stop).wait(self._poll_seconds)
        logger.info("Outbox dispatcher %s stopped", self._worker_id)

    def dispatch_once(self) -> DispatchOutcome:
        """Claim due actions, deliver them and record the outcomes."""
        outcome = DispatchOutcome()
        targets = self.writable_targets()
        if not targets:
            return outcome
        with write_transaction(self._session_factory) as session:
            actions = claim_due_actions(
                session,
                limit=self._batch_size,
                now=self._clock(),
                worker=self._worker_id,
                lease_seconds=self._claim_seconds,
                targets=targets,
            )
        outcome.claimed = len(actions)
        if not actions:
            return outcome
        results = self._deliver_all(actions)
        self._record(results, outcome)
        logger.info(
            "Outbox round: claimed=%d delivered=%d retried=%d dead=%d",
            outcome.claimed,
            len(outcome.delivered),
            len(outcome.retried),
            len(outcome.dead),
        )
        return outcome

    def _deliver_all(self, actions: list[OutboxAction]) -> list[_Result]:
        if len(actions) == 1 or self._threads == 1:
            return [self._deliver(action) for action in actions]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self._threads, thread_name_prefix="deliver"
            )
        return list(self._pool.map(self._deliver, actions))

    def _deliver(self, action: OutboxAction) -> _Result:
        connector = self._connectors[(action.system, action.instance)]
        try:
            delivered = connector.deliver(action)
        except PermanentDeliveryError as error:
            return _Result(action=action, error=str(error), permanent=True)
        except RetryableDeliveryError as error:
            return _Result(
                action=action, error=str(error), retry_after=error.retry_after
            )
        except Exception as error:
            # An error the connector did not classify is retried, so a bug or an
            # unexpected network error costs attempts but loses nothing.
            logger.exception(
                "Delivering action %s of ticket=%s raised", action.id, action.ticket_key
            )
            return _Result(action=action, error=f"{type(error).__name__}: {error}")
        return _Result(action=action, delivered=delivered)

    def _record(self, results: list[_Result], outcome: DispatchOutcome) -> None:
        now = self._clock()
        delivered = [result for result in results if result.delivered is not None]
        with write_transaction(self._session_factory) as session:
            mark_actions_done(
                session,
                results=[
                    (
                        result.action.id,
                        {
                            "marker_found": result.delivered.marker_found,
                            **result.delivered.details,
                        },
                    )
                    for result in delivered
                    if result.delivered is not None
                ],
                now=now,
            )
            for result in results:
                self._record_one(session, result, now=now, outcome=outcome)

    def _record_one(
        self,
        session: Session,
        result: _Result,
        *,
        now: datetime,
        outcome: DispatchOutcome,
    ) -> None:
        action = result.action
        if result.delivered is not None:
            # `_record` marked it done with the others of the round.
            outcome.delivered.append(action.id)
            self._metrics.writeback_deliveries.labels(
                system=action.system, kind=action.kind
            ).inc()
            logger.debug(
                "Delivered action=%s ticket=%s marker_found=%s",
                action.id,
                action.ticket_key,
                result.delivered.marker_found,
            )
            return

        error = (result.error or "unknown error")[:MAX_ERROR_CHARS]
        if result.permanent or action.attempts >= self._backoff.max_attempts:
            if not result.permanent:
                error = f"gave up after {action.attempts} attempts: {error}"
            park_action_dead(session, action_id=action.id, error=error, now=now)
            outcome.dead.append(action.id)
            self._metrics.writeback_failures.labels(
                system=action.system, outcome="dead"
            ).inc()
            logger.error(
                "Action %s of ticket=%s is dead: %s",
                action.id,
                action.ticket_key,
                error,
            )
            return

        delay = self._backoff.delay(
            action.attempts, rng=self._rng, retry_after=result.retry_after
        )
        reschedule_action(
            session,
            action_id=action.id,
            error=error,
            next_attempt_at=now + timedelta(seconds=delay),
            now=now,
        )
        outcome.retried.append(action.id)
        self._metrics.writeback_failures.labels(
            system=action.system, outcome="retry"
        ).inc()
        logger.warning(
            "Action %s of ticket=%s failed (attempt %d), retrying in %.1f s: %s",
            action.id,
            action.ticket_key,
            action.attempts,
            delay,
            error,
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)
