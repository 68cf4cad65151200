"""Group commit of webhook events: many requests, one transaction, then the acks.

One thread owns a queue of requests. It takes what is waiting, up to
`max_events` events, and waits at most `max_wait_seconds` for more. It stores them
in one transaction and commits, then resolves each request's future with one flag
per event: True if it was stored now, False if it was a duplicate. A webhook view awaits
its future and acknowledges only after the commit, so an acknowledged event
survives a kill -9 of the process.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from router.intake.plugin import NewInboxEvent
from router.service.logs import describe_error
from router.service.metrics import ServiceMetrics
from router.service.transactions import write_transaction
from router.store import inbox

logger = logging.getLogger(__name__)

InsertFunction = Callable[[Session, Sequence[NewInboxEvent]], list[bool]]


class WriterUnavailableError(RuntimeError):
    """The events could not be stored; the sender should retry later."""


def insert_with_store(session: Session, events: Sequence[NewInboxEvent]) -> list[bool]:
    """Store events with the store's `insert_inbox_events` (the default insert)."""
    return inbox.insert_inbox_events(session, events=events)


@dataclass
class _Request:
    events: Sequence[NewInboxEvent]
    future: Future[list[bool]] = field(default_factory=Future)


_STOP = object()


class InboxWriter:
    """Store webhook events in group commits from one background thread.

    Args:
        session_factory: sessions on the store.
        insert: stores a batch in the session's transaction and returns, per event,
            whether it was new; tests pass one that fails.
        max_events: events per commit, at most (one request is never split).
        max_wait_seconds: how long the first request of a batch waits for others.
        max_queue: requests waiting beyond which `submit` fails at once.
        on_commit: called after each commit that stored a new event, to wake the
            worker at once instead of at its next poll.
    """

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        insert: InsertFunction = insert_with_store,
        max_events: int = 1000,
        max_wait_seconds: float = 0.002,
        max_queue: int = 10_000,
        metrics: ServiceMetrics | None = None,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._insert = insert
        self._on_commit = on_commit
        self._max_events = max_events
        self._max_wait = max_wait_seconds
        self._max_queue = max_queue
        self._metrics = metrics
        self._queue: queue.Queue[_Request | object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._lock = threading.Lock()
        # Monotonic time of the last commit, read by the worker to yield to intake.
        self.last_commit_at = 0.0

    def start(self) -> None:
        """Start the writer thread."""
        with self._lock:
            if self._thread is not None:
                return
            self._accepting = True
            self._thread = threading.Thread(
                target=self._run, name="inbox-writer", daemon=True
            )
            self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Store what is queued, then stop the thread."""
        with self._lock:
            self._accepting = False
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("Inbox writer did not stop within %.1f s", timeout)

    def submit(self, events: Sequence[NewInboxEvent]) -> Future[list[bool]]:
        """Queue events for the next commit and return the future of their outcome.

        The future fails with WriterUnavailableError when the writer is stopped,
        overloaded, or the commit failed.
        """
        request = _Request(events=events)
        if not self._accepting:
            request.future.set_exception(
                WriterUnavailableError("The inbox writer is not running; retry later.")
            )
        elif self._queue.qsize() >= self._max_queue:
            request.future.set_exception(
                WriterUnavailableError(
                    f"{self._max_queue} requests are already waiting to be stored; "
                    "retry later."
                )
            )
        else:
            self._queue.put(request)
        return request.future

    async def store(
        self, events: Sequence[NewInboxEvent], *, timeout: float
    ) -> list[bool]:
        """Submit events and wait until they are committed.

        Raises:
            WriterUnavailableError: the events were not committed within `timeout`
                seconds, or not at all.
        """
        future = self.submit(events)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except TimeoutError as error:
            raise WriterUnavailableError(
                f"The inbox commit did not finish within {timeout:.1f} s; retry later."
            ) from error

    def busy(self, *, within_seconds: float = 0.1) -> bool:
        """Return whether requests wait or a commit finished within the last moment."""
        recent = time.monotonic() - self.last_commit_at < within_seconds
        return recent or not self._queue.empty()

    def _run(self) -> None:
        logger.info("Inbox writer started")
        stopping = False
        while not stopping:
            batch, stopping = self._collect()
            if batch:
                self._commit(batch)
        logger.info("Inbox writer stopped")

    def _collect(self) -> tuple[list[_Request], bool]:
        first = self._queue.get()
        if first is _STOP:
            return self._drain(), True
        batch = [cast(_Request, first)]
        count = len(batch[0].events)
        deadline = time.monotonic() + self._max_wait
        while count < self._max_events:
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is _STOP:
                return batch + self._drain(), True
            request = cast(_Request, item)
            batch.append(request)
            count += len(request.events)
        return batch, False

    def _drain(self) -> list[_Request]:
        drained: list[_Request] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return drained
            if isinstance(item, _Request):
                drained.append(item)

    def _commit(self, batch: list[_Request]) -> None:
        events = [event for request in batch for event in request.events]
        # Any failure is caught, because every waiting request needs a response.
        try:
            stored = self._store(events)
        except Exception as error:
            if len(batch) > 1 and not _is_disconnect(error):
                # One request's bad data must not fail the others, so each one is
                # tried alone.
                self._commit_each(batch)
            else:
                self._fail(batch, error)
            return
        self._resolve(batch, stored)

    def _commit_each(self, batch: list[_Request]) -> None:
        for request in batch:
            try:
                stored = self._store(list(request.events))
            except Exception as error:
                self._fail([request], error)
                continue
            self._resolve([request], stored)

    def _store(self, events: Sequence[NewInboxEvent]) -> list[bool]:
        with write_transaction(self._session_factory) as session:
            stored = self._insert(session, events)
        if len(stored) != len(events):
            raise RuntimeError(
                f"The inbox insert returned {len(stored)} outcomes for {len(events)} "
                "events; it must return one per event."
            )
        self.last_commit_at = time.monotonic()
        if self._metrics is not None:
            self._metrics.writer_batch_events.observe(len(events))
        if self._on_commit is not None and any(stored):
            self._on_commit()
        return stored

    def _resolve(self, batch: list[_Request], stored: list[bool]) -> None:
        start = 0
        for request in batch:
            end = start + len(request.events)
            if not request.future.done():
                request.future.set_result(stored[start:end])
            start = end

    def _fail(self, batch: list[_Request], error: Exception) -> None:
        count = sum(len(request.events) for request in batch)
        logger.error(
            "Storing %d inbox events from %d requests failed: %s",
            count,
            len(batch),
            describe_error(error),
        )
        failure = WriterUnavailableError(
            "The database could not store the events; retry later."
        )
        for request in batch:
            if not request.future.done():
                request.future.set_exception(failure)


def _is_disconnect(error: Exception) -> bool:
    if isinstance(error, OperationalError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)
