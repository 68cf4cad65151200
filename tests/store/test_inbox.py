"""The inbox: storing webhook events once, claiming and finishing them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from router.store.db import session_factory
from router.store.inbox import (
    claim_inbox_events,
    count_pending_inbox,
    dedupe_key,
    insert_inbox_events,
    mark_inbox_done,
)
from router.store.models import inbox_events

from .queue_support import RECEIVED_AT, build_event, build_events, postgres_only


@pytest.fixture
def insert_statements(migrated_engine: Engine) -> Iterator[list[str]]:
    """Yield the list of INSERT statements sent to the database, filled as they run."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT"):
            sent.append(statement)

    event.listen(migrated_engine, "before_cursor_execute", record)
    yield sent
    event.remove(migrated_engine, "before_cursor_execute", record)


def _statuses(session: Session) -> dict[int, str]:
    rows = session.execute(select(inbox_events.c.id, inbox_events.c.status))
    return {row.id: row.status for row in rows}


def test_insert_reports_new_events_stored(session: Session) -> None:
    flags = insert_inbox_events(session, events=build_events(3))

    assert flags == [True, True, True]
    assert count_pending_inbox(session) == 3


def test_stored_event_keeps_its_fields(session: Session) -> None:
    new = build_event(delivery_id="abc-1")
    insert_inbox_events(session, events=[new])
    session.commit()

    row = session.execute(select(inbox_events)).one()

    assert row.dedupe_key == "servicenow:default:d:abc-1"
    assert row.system == "servicenow"
    assert row.instance == "default"
    assert row.delivery_id == "abc-1"
    assert row.record_key == new.record_key
    assert row.record_version == "4"
    assert row.event_type == "update"
    assert row.record == new.record
    assert row.headers == {"content-type": "application/json"}
    assert row.status == "pending"
    assert row.received_at == RECEIVED_AT
    assert row.processed_at is None
    assert row.claimed_by is None
    assert row.attempts == 0
    assert row.error is None


def test_redelivered_delivery_id_is_duplicate(session: Session) -> None:
    insert_inbox_events(session, events=[build_event(delivery_id="abc-1")])
    session.commit()

    again = build_event(delivery_id="abc-1", record={"changed": True})
    flags = insert_inbox_events(session, events=[again])

    assert flags == [False]
    assert count_pending_inbox(session) == 1


def test_same_record_version_is_duplicate(session: Session) -> None:
    insert_inbox_events(session, events=[build_event()])
    session.commit()

    flags = insert_inbox_events(session, events=[build_event()])

    assert flags == [False]


def test_new_record_version_is_stored(session: Session) -> None:
    insert_inbox_events(session, events=[build_event(record_version="4")])

    flags = insert_inbox_events(session, events=[build_event(record_version="5")])

    assert flags == [True]
    assert count_pending_inbox(session) == 2


def test_same_delivery_other_instance_is_stored(session: Session) -> None:
    insert_inbox_events(session, events=[build_event(delivery_id="abc-1")])

    other = build_event(delivery_id="abc-1", instance="emea")
    flags = insert_inbox_events(session, events=[other])

    assert flags == [True]


def test_duplicates_within_batch_flagged_after_first(session: Session) -> None:
    batch = [
        build_event(delivery_id="a"),
        build_event(delivery_id="b"),
        build_event(delivery_id="a"),
        build_event(delivery_id="c"),
        build_event(delivery_id="b"),
    ]

    flags = insert_inbox_events(session, events=batch)

    assert flags == [True, True, False, True, False]
    assert count_pending_inbox(session) == 3


def test_mixed_batch_flags_stored_duplicates(session: Session) -> None:
    insert_inbox_events(session, events=[build_event(delivery_id="b")])
    session.commit()
    batch = [build_event(delivery_id=name) for name in ("a", "b", "c")]

    flags = insert_inbox_events(session, events=batch)

    assert flags == [True, False, True]


def test_batch_is_one_insert_statement(
    session: Session, insert_statements: list[str]
) -> None:
    flags = insert_inbox_events(session, events=build_events(200))

    assert len(insert_statements) == 1
    assert insert_statements[0].count("), (") == 199
    assert all(flags)


def test_versionless_record_dedupes_by_content(session: Session) -> None:
    first = build_event(record_version=None, record={"sys_id": "1", "state": "new"})
    same = build_event(record_version=None, record={"state": "new", "sys_id": "1"})
    changed = build_event(record_version=None, record={"sys_id": "1", "state": "wip"})

    flags = insert_inbox_events(session, events=[first, same, changed])

    assert flags == [True, False, True]


def test_dedupe_key_prefers_delivery_id() -> None:
    key = dedupe_key(build_event(delivery_id="d-9", record_version="4"))

    assert key == "servicenow:default:d:d-9"


def test_dedupe_key_uses_record_version() -> None:
    key = dedupe_key(build_event(record_key="incident:42", record_version="7"))

    assert key == "servicenow:default:r:incident:42:7"


def test_empty_batch_stores_nothing(session: Session) -> None:
    assert insert_inbox_events(session, events=[]) == []
    assert count_pending_inbox(session) == 0


def test_overlong_field_is_rejected(session: Session) -> None:
    with pytest.raises(ValueError, match="event_type is 101 characters long"):
        insert_inbox_events(session, events=[build_event(event_type="x" * 101)])


def test_empty_record_key_is_rejected(session: Session) -> None:
    with pytest.raises(ValueError, match="record_key is empty"):
        insert_inbox_events(session, events=[build_event(record_key="")])


def test_claim_takes_oldest_pending_first(session: Session) -> None:
    insert_inbox_events(session, events=build_events(5))
    session.commit()

    claimed = claim_inbox_events(session, limit=3, worker="replica-a")

    assert [item.delivery_id for item in claimed] == [
        "delivery-0",
        "delivery-1",
        "delivery-2",
    ]


def test_claim_records_worker_and_attempt(session: Session) -> None:
    insert_inbox_events(session, events=build_events(1))

    [claimed] = claim_inbox_events(session, limit=10, worker="replica-a")

    assert claimed.claimed_by == "replica-a"
    assert claimed.attempts == 1
    assert claimed.status == "pending"
    assert claimed.record["number"] == "INC0010042"
    assert claimed.received_at == RECEIVED_AT


def test_claim_skips_finished_events(session: Session) -> None:
    insert_inbox_events(session, events=build_events(3))
    first = claim_inbox_events(session, limit=2, worker="replica-a")
    mark_inbox_done(session, ids=[item.id for item in first])

    rest = claim_inbox_events(session, limit=10, worker="replica-a")

    assert [item.delivery_id for item in rest] == ["delivery-2"]


def test_claim_on_empty_inbox_returns_nothing(session: Session) -> None:
    assert claim_inbox_events(session, limit=10, worker="replica-a") == []


def test_claim_rejects_zero_limit(session: Session) -> None:
    with pytest.raises(ValueError, match="got 0"):
        claim_inbox_events(session, limit=0, worker="replica-a")


def test_mark_done_sets_status_and_time(session: Session) -> None:
    insert_inbox_events(session, events=build_events(2))
    processed_at = datetime(2025, 3, 1, 9, 31, tzinfo=UTC)
    ids = [item.id for item in claim_inbox_events(session, limit=2, worker="w")]

    changed = mark_inbox_done(session, ids=ids, now=processed_at)
    rows = session.execute(select(inbox_events)).all()

    assert changed == 2
    assert [row.status for row in rows] == ["done", "done"]
    assert [row.processed_at for row in rows] == [processed_at, processed_at]


def test_mark_failed_stores_error(session: Session) -> None:
    insert_inbox_events(session, events=build_events(1))
    [claimed] = claim_inbox_events(session, limit=1, worker="w")

    mark_inbox_done(
        session, ids=[claimed.id], outcome="failed", error="no sys_id in record"
    )
    row = session.execute(select(inbox_events)).one()

    assert row.status == "failed"
    assert row.error == "no sys_id in record"


def test_mark_skipped_leaves_others_pending(session: Session) -> None:
    insert_inbox_events(session, events=build_events(2))
    first, second = claim_inbox_events(session, limit=2, worker="w")

    mark_inbox_done(session, ids=[first.id], outcome="skipped", error="not a ticket")

    assert _statuses(session) == {first.id: "skipped", second.id: "pending"}


def test_mark_failed_without_error_is_rejected(session: Session) -> None:
    with pytest.raises(ValueError, match="needs an error"):
        mark_inbox_done(session, ids=[1], outcome="failed")


def test_unknown_outcome_is_rejected(session: Session) -> None:
    with pytest.raises(ValueError, match="'pending' is invalid"):
        mark_inbox_done(session, ids=[1], outcome="pending")


def test_mark_done_twice_changes_nothing(session: Session) -> None:
    insert_inbox_events(session, events=build_events(1))
    [claimed] = claim_inbox_events(session, limit=1, worker="w")
    mark_inbox_done(session, ids=[claimed.id])

    changed = mark_inbox_done(session, ids=[claimed.id], outcome="skipped", error="x")

    assert changed == 0
    assert _statuses(session) == {claimed.id: "done"}


@postgres_only
def test_concurrent_claims_are_disjoint(migrated_engine: Engine) -> None:
    factory = session_factory(migrated_engine)
    with factory.begin() as setup:
        insert_inbox_events(setup, events=build_events(10))

    with factory() as first, factory() as second:
        taken_first = claim_inbox_events(first, limit=6, worker="replica-a")
        taken_second = claim_inbox_events(second, limit=6, worker="replica-b")
        ids_first = {item.id for item in taken_first}
        ids_second = {item.id for item in taken_second}
        first.rollback()
        second.rollback()

    assert len(ids_first) == 6
    assert len(ids_second) == 4
    assert ids_first & ids_second == set()


@postgres_only
def test_rolled_back_claim_releases_events(migrated_engine: Engine) -> None:
    factory = session_factory(migrated_engine)
    with factory.begin() as setup:
        insert_inbox_events(setup, events=build_events(10))

    with factory() as crashed, factory() as survivor:
        lost = claim_inbox_events(crashed, limit=4, worker="replica-a")
        survivor_events = claim_inbox_events(survivor, limit=4, worker="replica-b")
        mark_inbox_done(survivor, ids=[item.id for item in survivor_events])
        survivor.commit()
        crashed.rollback()

        rest = claim_inbox_events(survivor, limit=10, worker="replica-b")
        survivor.commit()

    lost_ids = {item.id for item in lost}
    rest_ids = {item.id for item in rest}
    assert lost_ids <= rest_ids
    assert len(rest_ids) == 6
    assert rest_ids & {item.id for item in survivor_events} == set()
    assert all(item.attempts == 1 for item in rest)


@postgres_only
def test_parallel_workers_finish_each_event_once(migrated_engine: Engine) -> None:
    factory = session_factory(migrated_engine)
    with factory.begin() as setup:
        insert_inbox_events(setup, events=build_events(300))
    finished: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def work(worker: str) -> None:
        mine = finished.setdefault(worker, [])
        try:
            while True:
                with factory.begin() as session:
                    batch = claim_inbox_events(session, limit=7, worker=worker)
                    if not batch:
                        return
                    mark_inbox_done(session, ids=[item.id for item in batch])
                mine.extend(item.id for item in batch)
        except BaseException as error:  # the main thread re-raises it below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"replica-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    every_id = [item for ids in finished.values() for item in ids]
    assert errors == []
    assert len(every_id) == 300
    assert len(set(every_id)) == 300


@postgres_only
@pytest.mark.parametrize(
    ("first_ends", "copy_stored"), [("commit", False), ("rollback", True)]
)
def test_duplicate_waits_for_first_copy(
    migrated_engine: Engine, first_ends: str, copy_stored: bool
) -> None:
    factory = session_factory(migrated_engine)
    flags: list[bool] = []

    def insert_copy() -> None:
        with factory.begin() as second:
            copy = build_event(delivery_id="abc-1")
            flags.extend(insert_inbox_events(second, events=[copy]))

    with factory() as first:
        insert_inbox_events(first, events=[build_event(delivery_id="abc-1")])
        thread = threading.Thread(target=insert_copy)
        thread.start()
        thread.join(timeout=0.5)
        waited = thread.is_alive()
        getattr(first, first_ends)()
        thread.join(timeout=10)

    assert waited is True
    assert flags == [copy_stored]
    with factory() as check:
        assert count_pending_inbox(check) == 1
