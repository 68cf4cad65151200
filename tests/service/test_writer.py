"""The group-commit writer: batching, all-or-nothing commits, isolation of bad data."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from router.intake.plugin import NewInboxEvent
from router.service.writer import InboxWriter, WriterUnavailableError, insert_with_store

from .support import count_rows


def event(number: int, *, record_key: str | None = None) -> NewInboxEvent:
    return NewInboxEvent(
        system="servicenow",
        instance="default",
        delivery_id=None,
        record_key=f"{number:032x}" if record_key is None else record_key,
        record_version="0",
        event_type="insert",
        record={"sys_id": f"{number:032x}", "number": f"INC{number:07d}"},
        headers={},
        received_at=datetime.now(UTC),
    )


class CountingInsert:
    """The store's insert, counting its calls (one per transaction)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, session: Session, events: Sequence[NewInboxEvent]) -> list[bool]:
        with self._lock:
            self.calls += 1
        return insert_with_store(session, events)


@pytest.fixture
def counting() -> CountingInsert:
    return CountingInsert()


@pytest.fixture
def writer(
    store: sessionmaker[Session], counting: CountingInsert
) -> Iterator[InboxWriter]:
    started = InboxWriter(
        session_factory=store, insert=counting, max_events=1000, max_wait_seconds=0.05
    )
    started.start()
    yield started
    started.stop()


def inbox_rows(store: sessionmaker[Session]) -> int:
    with store() as session:
        return count_rows(session, "inbox_events")


def test_concurrent_requests_share_commits(
    writer: InboxWriter, counting: CountingInsert, store: sessionmaker[Session]
) -> None:
    futures = [writer.submit([event(number)]) for number in range(100)]
    results = [future.result(timeout=10) for future in futures]
    assert results == [[True]] * 100
    assert counting.calls < 10
    assert inbox_rows(store) == 100


def test_duplicate_within_batch_stored_once(
    writer: InboxWriter, store: sessionmaker[Session]
) -> None:
    first = writer.submit([event(1)])
    second = writer.submit([event(1)])
    assert first.result(timeout=10) == [True]
    assert second.result(timeout=10) == [False]
    assert inbox_rows(store) == 1


def test_failed_insert_fails_every_request(store: sessionmaker[Session]) -> None:
    def insert_then_fail(
        session: Session, events: Sequence[NewInboxEvent]
    ) -> list[bool]:
        insert_with_store(session, events)
        raise RuntimeError("the disk is full")

    writer = InboxWriter(session_factory=store, insert=insert_then_fail)
    writer.start()
    try:
        futures = [writer.submit([event(number)]) for number in range(5)]
        errors = [future.exception(timeout=10) for future in futures]
    finally:
        writer.stop()
    assert all(isinstance(error, WriterUnavailableError) for error in errors)
    assert inbox_rows(store) == 0


def test_bad_event_fails_only_its_request(
    writer: InboxWriter, store: sessionmaker[Session]
) -> None:
    futures: list[Future[list[bool]]] = [
        writer.submit([event(1)]),
        writer.submit([event(2, record_key="")]),
        writer.submit([event(3)]),
    ]
    assert futures[0].result(timeout=10) == [True]
    assert isinstance(futures[1].exception(timeout=10), WriterUnavailableError)
    assert futures[2].result(timeout=10) == [True]
    assert inbox_rows(store) == 2


def test_stopped_writer_rejects_at_once(store: sessionmaker[Session]) -> None:
    writer = InboxWriter(session_factory=store)
    future = writer.submit([event(1)])
    assert isinstance(future.exception(timeout=1), WriterUnavailableError)


def test_stop_commits_queued_requests(
    store: sessionmaker[Session], counting: CountingInsert
) -> None:
    writer = InboxWriter(session_factory=store, insert=counting, max_wait_seconds=0.2)
    writer.start()
    futures = [writer.submit([event(number)]) for number in range(3)]
    writer.stop()
    assert [future.result(timeout=1) for future in futures] == [[True]] * 3
    assert inbox_rows(store) == 3
