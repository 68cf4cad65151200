"""The outbox dispatcher: delivery, marker check, backoff, dead actions."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from router.classification.model import RoutingModel
from router.intake.plugin import (
    Connector,
    DeliveryAction,
    DeliveryResult,
    ParsedWebhook,
    PermanentDeliveryError,
    RetryableDeliveryError,
    WebhookRequest,
)
from router.mapping import MappingSet
from router.routing import TicketRouter
from router.sandbox.servicenow import FakeServiceNow
from router.schemas import Ticket
from router.service.dispatcher import BackoffPolicy, OutboxDispatcher
from router.service.worker import InboxWorker
from router.store.models import outbox_actions
from router.store.outbox import NewOutboxAction, enqueue_actions
from router.store.records import OutboxAction

from .support import auto_route_mappings, incident, servicenow_connector
from .test_worker import store_records

BACKOFF = BackoffPolicy(base_seconds=2.0, max_seconds=60.0, max_attempts=3)


class ScriptedConnector:
    """A connector whose deliveries fail as the test scripts them."""

    system = "servicenow"
    instance = "default"

    def __init__(self, *outcomes: Exception | None, writes: bool = True) -> None:
        self.outcomes = list(outcomes)
        self.writes = writes
        self.delivered: list[int] = []

    def webhook_secret_setting(self) -> str | None:
        return None

    def missing_settings(self) -> list[str]:
        return [] if self.writes else ["OPSROUTE_SERVICENOW_PASSWORD"]

    def can_write(self) -> bool:
        return self.writes

    def parse_webhook(self, request: WebhookRequest) -> ParsedWebhook:
        raise NotImplementedError

    def to_ticket(self, record: Mapping[str, Any], *, mappings: MappingSet) -> Ticket:
        raise NotImplementedError

    def deliver(self, action: DeliveryAction) -> DeliveryResult:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.delivered.append(action.id)
        return DeliveryResult(marker_found=False, details={"fake": True})


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def dispatcher_for(
    store: sessionmaker[Session], connector: Connector, clock: Clock
) -> OutboxDispatcher:
    return OutboxDispatcher(
        session_factory=store,
        connectors={("servicenow", "default"): connector},
        worker_id="test-dispatcher",
        backoff=BACKOFF,
        threads=1,
        rng=random.Random(0),
        clock=clock,
    )


def queue_action(store: sessionmaker[Session], clock: Clock) -> int:
    action = NewOutboxAction(
        system="servicenow",
        instance="default",
        kind="write_back",
        ticket_key="servicenow:INC0000001",
        record_id="a" * 32,
        payload={"group": "Hardware", "reason": "test"},
        marker="opsroute:decision:test-1",
        decision_id=None,
    )
    with store.begin() as session:
        (action_id,) = enqueue_actions(session, actions=[action], now=clock.now)
    return action_id


def stored_action(store: sessionmaker[Session], action_id: int) -> OutboxAction:
    with store() as session:
        row = session.execute(
            select(outbox_actions).where(outbox_actions.c.id == action_id)
        ).one()
    return OutboxAction(**row._mapping)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_delivered_action_is_done(store: sessionmaker[Session], clock: Clock) -> None:
    connector = ScriptedConnector()
    action_id = queue_action(store, clock)
    outcome = dispatcher_for(store, connector, clock).dispatch_once()
    action = stored_action(store, action_id)
    assert outcome.delivered == [action_id]
    assert action.status == "done"
    assert action.result == {"marker_found": False, "fake": True}


def test_retryable_error_reschedules_with_jitter(
    store: sessionmaker[Session], clock: Clock
) -> None:
    connector = ScriptedConnector(RetryableDeliveryError("HTTP 503"))
    action_id = queue_action(store, clock)
    outcome = dispatcher_for(store, connector, clock).dispatch_once()
    action = stored_action(store, action_id)
    delay = (action.next_attempt_at - clock.now).total_seconds()
    assert outcome.retried == [action_id]
    assert action.status == "pending"
    assert action.attempts == 1
    assert action.last_error == "HTTP 503"
    assert 0 <= delay <= BACKOFF.base_seconds


def test_retried_action_waits_for_its_time(
    store: sessionmaker[Session], clock: Clock
) -> None:
    connector = ScriptedConnector(RetryableDeliveryError("HTTP 503"))
    action_id = queue_action(store, clock)
    dispatcher = dispatcher_for(store, connector, clock)
    dispatcher.dispatch_once()
    clock.now = stored_action(store, action_id).next_attempt_at - timedelta(
        milliseconds=1
    )
    early = dispatcher.dispatch_once()
    clock.advance(0.002)
    due = dispatcher.dispatch_once()
    assert early.claimed == 0
    assert due.delivered == [action_id]


def test_last_attempt_parks_action_dead(
    store: sessionmaker[Session], clock: Clock
) -> None:
    failures = [RetryableDeliveryError("HTTP 503") for _ in range(BACKOFF.max_attempts)]
    connector = ScriptedConnector(*failures)
    action_id = queue_action(store, clock)
    dispatcher = dispatcher_for(store, connector, clock)
    for _ in range(BACKOFF.max_attempts):
        dispatcher.dispatch_once()
        clock.advance(BACKOFF.max_seconds)
    action = stored_action(store, action_id)
    assert action.status == "dead"
    assert action.attempts == BACKOFF.max_attempts
    assert action.last_error == "gave up after 3 attempts: HTTP 503"


def test_permanent_error_parks_action_dead(
    store: sessionmaker[Session], clock: Clock
) -> None:
    connector = ScriptedConnector(PermanentDeliveryError("HTTP 400: bad group"))
    action_id = queue_action(store, clock)
    outcome = dispatcher_for(store, connector, clock).dispatch_once()
    action = stored_action(store, action_id)
    assert outcome.dead == [action_id]
    assert action.status == "dead"
    assert action.attempts == 1
    assert action.last_error == "HTTP 400: bad group"


def test_unclassified_error_is_retried(
    store: sessionmaker[Session], clock: Clock
) -> None:
    connector = ScriptedConnector(KeyError("sys_id"))
    action_id = queue_action(store, clock)
    outcome = dispatcher_for(store, connector, clock).dispatch_once()
    assert outcome.retried == [action_id]
    assert stored_action(store, action_id).status == "pending"


def test_connector_without_credentials_leaves_action_pending(
    store: sessionmaker[Session], clock: Clock
) -> None:
    connector = ScriptedConnector(writes=False)
    action_id = queue_action(store, clock)
    outcome = dispatcher_for(store, connector, clock).dispatch_once()
    action = stored_action(store, action_id)
    assert outcome.claimed == 0
    assert action.status == "pending"
    assert action.attempts == 0


def test_backoff_delay_grows_and_is_capped() -> None:
    policy = BackoffPolicy(base_seconds=1.0, max_seconds=10.0, max_attempts=8)
    rng = random.Random(1)
    ceilings = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    for attempts, ceiling in enumerate(ceilings, start=1):
        delays = [policy.delay(attempts, rng=rng) for _ in range(200)]
        assert max(delays) <= ceiling
        assert max(delays) > ceiling * 0.8


def test_backoff_respects_retry_after() -> None:
    policy = BackoffPolicy(base_seconds=1.0, max_seconds=10.0, max_attempts=8)
    delay = policy.delay(1, rng=random.Random(0), retry_after=7.0)
    capped = policy.delay(1, rng=random.Random(0), retry_after=700.0)
    assert delay >= 7.0
    assert capped == 10.0


# The real ServiceNow connector against the fake Table API.

HELPDESK_TARGETS = (
    "Access Management",
    "Workstation Admin Rights",
    "Hardware Support",
    "HR Support",
    "Internal Projects",
    "Service Desk",
    "Procurement",
    "Storage Management",
)


@pytest.fixture
def fake_servicenow() -> Iterator[FakeServiceNow]:
    with FakeServiceNow(lifetime_seconds=60) as fake:
        for name in HELPDESK_TARGETS:
            fake.add_group(name)
        yield fake


def route_one(
    store: sessionmaker[Session],
    model: RoutingModel,
    mappings: MappingSet,
    connector: Connector,
    record: dict[str, Any],
) -> None:
    store_records(store, record)
    worker = InboxWorker(
        session_factory=store,
        connectors={("servicenow", "default"): connector},
        mappings=mappings,
        router=TicketRouter(model=model, mappings=mappings),
        worker_id="test-worker",
    )
    assert worker.process_batch().actions == 1


def test_servicenow_writeback_appears_once(
    store: sessionmaker[Session],
    small_model: RoutingModel,
    fake_servicenow: FakeServiceNow,
    clock: Clock,
) -> None:
    mappings = auto_route_mappings()
    connector = servicenow_connector(api_url=fake_servicenow.url, mappings=mappings)
    record = fake_servicenow.add_record("incident", incident(1))
    route_one(store, small_model, mappings, connector, record)
    clock.now = datetime.now(UTC)
    dispatcher = dispatcher_for(store, connector, clock)

    first = dispatcher.dispatch_once()
    # A dispatcher that died after the write leaves the action to be claimed again.
    with store.begin() as session:
        session.execute(update(outbox_actions).values(status="pending"))
    second = dispatcher.dispatch_once()

    with store() as session:
        action = session.execute(select(outbox_actions)).one()
    notes = fake_servicenow.journal(record["sys_id"])
    assert len(first.delivered) == 1
    assert len(second.delivered) == 1
    assert len(notes) == 1
    assert action.marker in notes[0]
    assert action.result["marker_found"] is True
    assert len(fake_servicenow.calls_to("PATCH")) == 1
    assert fake_servicenow.record("incident", record["sys_id"])["assignment_group"]


def test_servicenow_503_is_retried(
    store: sessionmaker[Session],
    small_model: RoutingModel,
    fake_servicenow: FakeServiceNow,
    clock: Clock,
) -> None:
    mappings = auto_route_mappings()
    connector = servicenow_connector(api_url=fake_servicenow.url, mappings=mappings)
    record = fake_servicenow.add_record("incident", incident(2))
    route_one(store, small_model, mappings, connector, record)
    clock.now = datetime.now(UTC)
    fake_servicenow.fail_next(503)
    dispatcher = dispatcher_for(store, connector, clock)

    failed = dispatcher.dispatch_once()
    clock.advance(BACKOFF.max_seconds)
    delivered = dispatcher.dispatch_once()

    assert len(failed.retried) == 1
    assert delivered.delivered == failed.retried
    assert len(fake_servicenow.journal(record["sys_id"])) == 1
