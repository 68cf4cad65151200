"""Polling into the inbox, go-live switches, and which polled changes route.

Each test polls the fake ServiceNow through pysnow, routes with the real worker
and delivers with the real dispatcher, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import PollRetryPolicy
from connectors.servicenow import ServiceNowConnector
from connectors.settings import ServiceNowSettings
from router.classification.model import RoutingModel
from router.mapping import MappingSet
from router.routing import TicketRouter
from router.sandbox.servicenow import FakeServiceNow
from router.service.dispatcher import BackoffPolicy, OutboxDispatcher
from router.service.jobs import read_connector_health
from router.service.polling import ConnectorPoller, PollBackoff
from router.service.runtime import ServiceRuntime
from router.service.worker import InboxWorker
from router.store.connector_state import get_connector_state, update_connector_state
from router.store.inbox import NewInboxEvent, insert_inbox_events
from router.store.models import audit_log, decisions, inbox_events, outbox_actions
from router.store.service import ticket_trail

from .support import SNOW_PASSWORD, SNOW_USER, auto_route_mappings, incident
from .test_dispatcher import HELPDESK_TARGETS

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def fake_servicenow() -> Iterator[FakeServiceNow]:
    with FakeServiceNow(
        user=SNOW_USER, password=SNOW_PASSWORD, lifetime_seconds=60
    ) as fake:
        for name in HELPDESK_TARGETS:
            fake.add_group(name)
        yield fake


@pytest.fixture
def mappings() -> MappingSet:
    return auto_route_mappings()


@pytest.fixture
def connector(
    fake_servicenow: FakeServiceNow, mappings: MappingSet
) -> ServiceNowConnector:
    settings = ServiceNowSettings(
        instance=fake_servicenow.url,
        user=SNOW_USER,
        password=SecretStr(SNOW_PASSWORD),
        timeout_seconds=5,
        poll_start=START.isoformat(),
        poll_page_size=2,
    )
    created = ServiceNowConnector(settings=settings, mappings=mappings)
    created.retry_policy = PollRetryPolicy(attempts=2, base_seconds=0.01)
    return created


@pytest.fixture
def poller(store: sessionmaker[Session]) -> ConnectorPoller:
    return ConnectorPoller(session_factory=store, backoff=PollBackoff(base_seconds=5))


class Pipeline:
    """The worker and dispatcher of one test, run step by step."""

    def __init__(
        self,
        store: sessionmaker[Session],
        model: RoutingModel,
        mappings: MappingSet,
        connector: ServiceNowConnector,
    ) -> None:
        connectors = {("servicenow", "default"): connector}
        self.worker = InboxWorker(
            session_factory=store,
            connectors=connectors,
            mappings=mappings,
            router=TicketRouter(model=model, mappings=mappings),
            worker_id="test-worker",
        )
        self.dispatcher = OutboxDispatcher(
            session_factory=store,
            connectors=connectors,
            worker_id="test-dispatcher",
            backoff=BackoffPolicy(base_seconds=1, max_seconds=2, max_attempts=2),
            threads=1,
        )


@pytest.fixture
def pipeline(
    store: sessionmaker[Session],
    small_model: RoutingModel,
    mappings: MappingSet,
    connector: ServiceNowConnector,
) -> Pipeline:
    return Pipeline(store, small_model, mappings, connector)


def add_incident(fake: FakeServiceNow, number: int, minute: int) -> dict[str, Any]:
    updated = (START + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:%S")
    record = incident(number, sys_updated_on=updated, assignment_group="")
    del record["sys_mod_count"]
    return fake.add_record("incident", record)


def count(store: sessionmaker[Session], table: Any) -> int:
    with store() as session:
        return int(
            session.execute(select(func.count()).select_from(table)).scalar_one()
        )


def test_poll_stores_records_and_watermark(
    store: sessionmaker[Session],
    poller: ConnectorPoller,
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
) -> None:
    for number in range(1, 4):
        add_incident(fake_servicenow, number, minute=number)

    outcome = poller.poll(connector)

    assert outcome.status == "polled"
    assert outcome.stored == 3
    assert count(store, inbox_events) == 3
    with store() as session:
        state = get_connector_state(session, system="servicenow", instance="default")
    assert state is not None
    assert state.watermark == START + timedelta(minutes=3)
    assert state.healthy is True
    assert len(state.seen) == 3


def test_second_poll_skips_seen_changes(
    store: sessionmaker[Session],
    poller: ConnectorPoller,
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
) -> None:
    for number in range(1, 4):
        add_incident(fake_servicenow, number, minute=number)
    poller.poll(connector)

    again = poller.poll(connector)

    assert again.stored == 0
    assert again.duplicates == 3
    assert count(store, inbox_events) == 3


def test_new_mod_count_is_stored_again(
    store: sessionmaker[Session],
    poller: ConnectorPoller,
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
) -> None:
    record = add_incident(fake_servicenow, 1, minute=1)
    poller.poll(connector)
    fake_servicenow.change_record(
        "incident",
        record["sys_id"],
        {"priority": "2"},
        by="ana",
        at="2026-11-30 08:01:00",
    )

    again = poller.poll(connector)

    assert again.stored == 1
    assert count(store, inbox_events) == 2


def test_pause_stops_polling(
    store: sessionmaker[Session],
    poller: ConnectorPoller,
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
) -> None:
    add_incident(fake_servicenow, 1, minute=1)
    poller.poll(connector)
    with store.begin() as session:
        update_connector_state(
            session, system="servicenow", instance="default", paused=True
        )
    calls_before = len(fake_servicenow.calls)

    outcome = poller.poll(connector)

    assert outcome.status == "paused"
    assert len(fake_servicenow.calls) == calls_before


def test_outage_marks_connector_unhealthy(
    store: sessionmaker[Session],
    poller: ConnectorPoller,
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
) -> None:
    fake_servicenow.fail_next(503, headers={"Retry-After": "120"})
    before = datetime.now(UTC)

    outcome = poller.poll(connector)
    waiting = poller.poll(connector)

    assert outcome.status == "failed"
    assert waiting.status == "waiting"
    with store() as session:
        state = get_connector_state(session, system="servicenow", instance="default")
    assert state is not None
    assert state.healthy is False
    assert state.last_error is not None
    assert "HTTP 503" in state.last_error
    assert state.failures == 1
    assert state.retry_at is not None
    assert state.retry_at >= before + timedelta(seconds=119)


def test_backfill_routes_a_backlog(
    store: sessionmaker[Session],
    poller: ConnectorPoller,
    pipeline: Pipeline,
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
) -> None:
    for number in range(1, 6):
        add_incident(fake_servicenow, number, minute=-60 * 24 * number)
    poller.poll(connector)
    assert count(store, inbox_events) == 0

    outcome = poller.backfill(connector, since=START - timedelta(days=30), limit=None)
    routed = pipeline.worker.process_batch()

    assert outcome.stored == 5
    assert routed.decided == 5
    with store() as session:
        state = get_connector_state(session, system="servicenow", instance="default")
    assert state is not None
    assert state.watermark == START


def test_echo_of_write_back_starts_nothing(
    store: sessionmaker[Session],
    poller: ConnectorPoller,
    pipeline: Pipeline,
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
) -> None:
    add_incident(fake_servicenow, 1, minute=1)
    poller.poll(connector)
    pipeline.worker.process_batch()
    assert len(pipeline.dispatcher.dispatch_once().delivered) == 1

    poller.poll(connector)
    echo = pipeline.worker.process_batch()

    assert echo.claimed == 1
    assert echo.skipped == 1
    assert count(store, decisions) == 1
    assert count(store, outbox_actions) == 1


def test_person_reassignment_is_recorded_not_overridden(
    store: sessionmaker[Session],
    poller: ConnectorPoller,
    pipeline: Pipeline,
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
) -> None:
    record = add_incident(fake_servicenow, 1, minute=1)
    poller.poll(connector)
    pipeline.worker.process_batch()
    pipeline.dispatcher.dispatch_once()
    other = connector._group_sys_id("Procurement")
    fake_servicenow.change_record(
        "incident", record["sys_id"], {"assignment_group": other}, by="ana.lopez"
    )

    poller.poll(connector)
    moved = pipeline.worker.process_batch()
    poller.poll(connector)
    pipeline.worker.process_batch()

    assert moved.skipped == 1
    assert count(store, decisions) == 1
    assert count(store, outbox_actions) == 1
    assert (
        fake_servicenow.record("incident", record["sys_id"])["assignment_group"]
        == other
    )
    with store() as session:
        trail = ticket_trail(session, ticket_key="servicenow:INC0000001")
        transfers = session.execute(
            select(func.count())
            .select_from(audit_log)
            .where(audit_log.c.event == "transfer")
        ).scalar_one()
    (transfer,) = [entry for entry in trail if entry.event == "transfer"]
    assert transfers == 1
    assert transfer.actor == "servicenow:ana.lopez"
    assert transfer.details["to_group"] == other
    assert transfer.details["by"] == "person"
    assert transfer.details["from_group"]


def test_triage_group_sends_ticket_back(
    store: sessionmaker[Session],
    poller: ConnectorPoller,
    pipeline: Pipeline,
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
) -> None:
    record = add_incident(fake_servicenow, 1, minute=1)
    poller.poll(connector)
    pipeline.worker.process_batch()
    pipeline.dispatcher.dispatch_once()
    triage = connector._group_sys_id("Service Desk")
    fake_servicenow.change_record(
        "incident", record["sys_id"], {"assignment_group": triage}, by="ana.lopez"
    )

    poller.poll(connector)
    rerouted = pipeline.worker.process_batch()

    assert rerouted.decided == 1
    assert count(store, decisions) == 2
    assert count(store, outbox_actions) == 2


def test_assigned_ticket_new_to_opsroute_is_left_alone(
    store: sessionmaker[Session],
    poller: ConnectorPoller,
    pipeline: Pipeline,
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
) -> None:
    record = add_incident(fake_servicenow, 1, minute=1)
    record["assignment_group"] = connector._group_sys_id("Procurement")

    poller.poll(connector)
    outcome = pipeline.worker.process_batch()

    assert outcome.skipped == 1
    assert count(store, decisions) == 0


def test_observe_only_writes_nothing(
    store: sessionmaker[Session],
    poller: ConnectorPoller,
    pipeline: Pipeline,
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
) -> None:
    add_incident(fake_servicenow, 1, minute=1)
    poller.poll(connector)
    with store.begin() as session:
        update_connector_state(
            session, system="servicenow", instance="default", observe_only=True
        )

    outcome = pipeline.worker.process_batch()

    assert outcome.decided == 1
    assert outcome.actions == 0
    assert count(store, decisions) == 1
    assert count(store, outbox_actions) == 0
    assert fake_servicenow.writes() == []


def test_late_older_change_starts_nothing(
    store: sessionmaker[Session],
    poller: ConnectorPoller,
    pipeline: Pipeline,
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
) -> None:
    record = add_incident(fake_servicenow, 1, minute=1)
    poller.poll(connector)
    pipeline.worker.process_batch()
    pipeline.dispatcher.dispatch_once()
    # A webhook of an earlier change, showing the triage group, arrives last.
    late = dict(record)
    late["assignment_group"] = connector._group_sys_id("Service Desk")
    late["sys_updated_on"] = "2026-11-30 08:01:30"
    late["sys_mod_count"] = "7"
    event = NewInboxEvent(
        system="servicenow",
        instance="default",
        delivery_id="late-delivery-1",
        record_key=record["sys_id"],
        record_version="7",
        event_type="update",
        record=late,
        headers={},
        received_at=datetime.now(UTC),
    )
    with store.begin() as session:
        insert_inbox_events(session, events=[event])

    outcome = pipeline.worker.process_batch()

    assert outcome.skipped == 1
    assert count(store, decisions) == 1
    with store() as session:
        error = session.execute(
            select(inbox_events.c.error).where(
                inbox_events.c.delivery_id == "late-delivery-1"
            )
        ).scalar_one()
    assert error == "the change is older than the ticket's last decision"


def test_invalid_poll_start_fails_the_poll(
    poller: ConnectorPoller, connector: ServiceNowConnector
) -> None:
    connector.settings.poll_start = "next tuesday"

    outcome = poller.poll(connector)

    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith("OPSROUTE_SERVICENOW_POLL_START: poll start")


def test_readyz_shows_unhealthy_connector(runtime: ServiceRuntime) -> None:
    (connector,) = [
        connector
        for (system, instance), connector in runtime.connectors.items()
        if instance == "default"
    ]
    ConnectorPoller(session_factory=runtime.session_factory).poll(connector)  # type: ignore[arg-type]

    runtime.connector_health = read_connector_health(runtime)
    _, body = runtime.readiness()

    poll = body["checks"]["connectors"]["servicenow/default"]["poll"]
    assert poll["healthy"] is False
    assert "needs API credentials" in poll["last_error"]
    assert "OPSROUTE_SERVICENOW_INSTANCE" in poll["last_error"]
    runtime.engine.dispose()
