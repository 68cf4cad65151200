"""The inbox worker: one transaction from claim to outbox, failures that stay put."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from router.classification.model import RoutingModel
from router.intake.plugin import Connector
from router.mapping import MappingSet
from router.routing import TicketRouter
from router.service import storing as storing_module
from router.service.worker import InboxWorker
from router.store.inbox import NewInboxEvent, insert_inbox_events
from router.store.models import decisions, inbox_events, outbox_actions

from .support import auto_route_mappings, count_rows, incident, servicenow_connector


def store_records(store: sessionmaker[Session], *records: dict[str, Any]) -> None:
    events = [
        NewInboxEvent(
            system="servicenow",
            instance="default",
            delivery_id=None,
            record_key=record["sys_id"],
            record_version=record["sys_mod_count"],
            event_type="insert",
            record=record,
            headers={},
            received_at=datetime.now(UTC),
        )
        for record in records
    ]
    with store.begin() as session:
        insert_inbox_events(session, events=events)


def make_worker(
    store: sessionmaker[Session], model: RoutingModel, mappings: MappingSet
) -> InboxWorker:
    connectors: dict[tuple[str, str], Connector] = {
        ("servicenow", "default"): servicenow_connector(mappings=mappings)
    }
    return InboxWorker(
        session_factory=store,
        connectors=connectors,
        mappings=mappings,
        router=TicketRouter(model=model, mappings=mappings),
        worker_id="test-worker",
    )


@pytest.fixture
def worker(store: sessionmaker[Session], small_model: RoutingModel) -> InboxWorker:
    return make_worker(store, small_model, auto_route_mappings())


def statuses(store: sessionmaker[Session]) -> list[tuple[str, str | None]]:
    with store() as session:
        rows = session.execute(
            select(inbox_events.c.status, inbox_events.c.error).order_by(
                inbox_events.c.id
            )
        ).all()
    return [(row.status, row.error) for row in rows]


def counts(store: sessionmaker[Session]) -> tuple[int, int]:
    with store() as session:
        return count_rows(session, "decisions"), count_rows(session, "outbox_actions")


def test_event_becomes_decision_and_writeback(
    worker: InboxWorker, store: sessionmaker[Session]
) -> None:
    record = incident(1)
    store_records(store, record)
    outcome = worker.process_batch()
    with store() as session:
        decision = session.execute(select(decisions)).one()
        action = session.execute(select(outbox_actions)).one()
    assert outcome.decided == 1
    assert statuses(store) == [("done", None)]
    assert action.kind == "write_back"
    assert action.marker == f"opsroute:decision:{decision.id}"
    assert action.decision_id == decision.id
    assert action.record_id == record["sys_id"]
    assert action.ticket_key == "servicenow:INC0000001"
    assert action.payload["group"] == decision.resolver_group
    assert decision.resolver_group in action.payload["note"]


def test_batch_gets_one_action_per_decision(
    worker: InboxWorker, store: sessionmaker[Session]
) -> None:
    store_records(store, *(incident(number) for number in range(1, 31)))
    outcome = worker.process_batch()
    with store() as session:
        markers = session.execute(select(outbox_actions.c.marker)).scalars().all()
    assert outcome.decided == 30
    assert counts(store) == (30, 30)
    assert len(set(markers)) == 30


def test_review_decision_queues_no_writeback(
    store: sessionmaker[Session], small_model: RoutingModel
) -> None:
    mappings = auto_route_mappings()
    strict = replace(
        mappings, thresholds=mappings.thresholds.model_copy(update={"default": 1.0})
    )
    worker = make_worker(store, small_model, strict)
    store_records(store, incident(1))
    worker.process_batch()
    with store() as session:
        kinds = session.execute(
            select(outbox_actions.c.kind, outbox_actions.c.payload)
        ).all()
    assert counts(store) == (1, 1)
    assert [kind for kind, _ in kinds] == ["notification"]
    assert kinds[0].payload["notification_type"] == "review"
    assert kinds[0].payload["target"] == "channel:#opsroute-review"
    assert statuses(store) == [("done", None)]


def test_unnormalizable_record_is_failed_once(
    worker: InboxWorker, store: sessionmaker[Session]
) -> None:
    broken = incident(1)
    del broken["number"]
    store_records(store, broken, incident(2))
    first = worker.process_batch()
    second = worker.process_batch()
    (failed_status, failed_error), (good_status, _) = statuses(store)
    assert first.failed == 1
    assert first.decided == 1
    assert second.claimed == 0
    assert failed_status == "failed"
    assert failed_error is not None
    assert "external_id" in failed_error
    assert good_status == "done"


def test_update_during_pending_write_back_is_skipped(
    worker: InboxWorker, store: sessionmaker[Session]
) -> None:
    store_records(store, incident(1))
    worker.process_batch()
    store_records(store, incident(1, sys_mod_count="1"))
    outcome = worker.process_batch()
    assert outcome.skipped == 1
    assert counts(store) == (1, 1)
    assert statuses(store)[1] == (
        "skipped",
        "a write-back of the ticket is still pending",
    )


def test_database_error_rolls_whole_batch_back(
    worker: InboxWorker,
    store: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(*args: object, **kwargs: object) -> list[int]:
        raise OperationalError("INSERT INTO outbox_actions", {}, Exception("gone"))

    monkeypatch.setattr(storing_module, "enqueue_actions", fail)
    store_records(store, incident(1), incident(2))
    with pytest.raises(OperationalError):
        worker.process_batch()
    assert counts(store) == (0, 0)
    assert statuses(store) == [("pending", None), ("pending", None)]


def test_routing_error_fails_only_its_event(
    worker: InboxWorker,
    store: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = storing_module.decision_actions

    def fail_for_second(**kwargs: Any) -> Any:
        if kwargs["ticket"].external_id == "INC0000002":
            raise RuntimeError("cannot build the note")
        return original(**kwargs)

    monkeypatch.setattr(storing_module, "decision_actions", fail_for_second)
    store_records(store, incident(1), incident(2), incident(3))
    outcome = worker.process_batch()
    assert outcome.decided == 2
    assert outcome.failed == 1
    assert counts(store) == (2, 2)
    assert [status for status, _ in statuses(store)] == ["done", "failed", "done"]
