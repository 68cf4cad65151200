"""Jira and Salesforce polls through the worker and dispatcher: echo and transfer.

Each test polls its fake through the real client library, routes with the real
worker, writes back with the real dispatcher, and polls again, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.jira import JiraConnector
from connectors.salesforce import SalesforceConnector
from connectors.settings import JiraSettings, SalesforceSettings
from router.classification.model import RoutingModel
from router.demo.payloads import DemoRow, to_jira_issue, to_salesforce_case
from router.intake.plugin import Connector
from router.mapping import MappingSet
from router.routing import TicketRouter
from router.sandbox.jira import FakeJira
from router.sandbox.salesforce import API_USER_ID, FakeSalesforce, sf_time
from router.service.dispatcher import BackoffPolicy, OutboxDispatcher
from router.service.polling import ConnectorPoller
from router.service.worker import InboxWorker
from router.store.models import audit_log, decisions, outbox_actions

from .support import auto_route_mappings

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
ROW = DemoRow(
    external_id="HELP-1",
    title="Laptop screen flickers after the docking station update",
    description="The monitor goes black when the laptop is docked.",
)


def run_steps(
    store: sessionmaker[Session],
    model: RoutingModel,
    mappings: MappingSet,
    connector: Connector,
) -> tuple[ConnectorPoller, InboxWorker, OutboxDispatcher]:
    connectors = {(connector.system, connector.instance): connector}
    poller = ConnectorPoller(session_factory=store)
    worker = InboxWorker(
        session_factory=store,
        connectors=connectors,
        mappings=mappings,
        router=TicketRouter(model=model, mappings=mappings),
        worker_id="test-worker",
    )
    dispatcher = OutboxDispatcher(
        session_factory=store,
        connectors=connectors,
        worker_id="test-dispatcher",
        backoff=BackoffPolicy(base_seconds=1, max_seconds=2, max_attempts=2),
        threads=1,
    )
    return poller, worker, dispatcher


def written_groups(store: sessionmaker[Session]) -> list[list[str]]:
    with store() as session:
        results = session.execute(select(outbox_actions.c.result)).scalars().all()
    return [list((result or {}).get("written_group") or []) for result in results]


def count(store: sessionmaker[Session], table: Any, **where: str) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with store() as session:
        return int(session.execute(query).scalar_one())


@pytest.fixture
def mappings() -> MappingSet:
    return auto_route_mappings()


@pytest.fixture
def fake_jira() -> Iterator[FakeJira]:
    with FakeJira(lifetime_seconds=60) as fake:
        yield fake


@pytest.fixture
def fake_salesforce(tmp_path: Path, mappings: MappingSet) -> Iterator[FakeSalesforce]:
    with FakeSalesforce(certificate_dir=tmp_path, lifetime_seconds=60) as fake:
        for number, group in enumerate(mappings.taxonomy.resolver_groups, start=1):
            fake.add_queue(
                group.targets.salesforce or group.name, f"00G5g{number:010d}AAA"
            )
        yield fake


def test_jira_echo_and_transfer(
    store: sessionmaker[Session],
    small_model: RoutingModel,
    mappings: MappingSet,
    fake_jira: FakeJira,
) -> None:
    settings = JiraSettings(
        url=fake_jira.url,
        user=fake_jira.user,
        api_token=SecretStr(fake_jira.token),
        deployment="server",
        poll_start=START.isoformat(),
        timeout_seconds=5,
    )
    connector = JiraConnector(settings=settings, mappings=mappings)
    poller, worker, dispatcher = run_steps(store, small_model, mappings, connector)
    issue = fake_jira.add_issue(to_jira_issue(ROW))
    fake_jira.touch(issue, at=START + timedelta(minutes=1))

    poller.poll(connector)
    first = worker.process_batch()
    dispatcher.dispatch_once()
    poller.poll(connector)
    echo = worker.process_batch()
    issue["fields"]["components"] = [{"name": "Desk Team"}]
    fake_jira.touch(issue)
    poller.poll(connector)
    moved = worker.process_batch()

    assert first.decided == 1
    (written,) = written_groups(store)
    assert written
    assert echo.skipped == 1
    assert moved.skipped == 1
    assert count(store, decisions) == 1
    assert count(store, outbox_actions) == 1
    assert count(store, audit_log, event="transfer") == 1
    assert issue["fields"]["components"] == [{"name": "Desk Team"}]


def test_salesforce_echo_and_transfer(
    store: sessionmaker[Session],
    small_model: RoutingModel,
    mappings: MappingSet,
    fake_salesforce: FakeSalesforce,
) -> None:
    settings = SalesforceSettings(
        instance_url=fake_salesforce.url,
        session_id=SecretStr(fake_salesforce.session_id),
        integration_user_id=API_USER_ID,
        poll_start=START.isoformat(),
        timeout_seconds=5,
    )
    connector = SalesforceConnector(
        settings=settings,
        mappings=mappings,
        http_session=fake_salesforce.client_session(),
    )
    poller, worker, dispatcher = run_steps(store, small_model, mappings, connector)
    case = to_salesforce_case(ROW)
    case["SystemModstamp"] = sf_time(START + timedelta(minutes=1))
    fake_salesforce.add_case(case)

    poller.poll(connector)
    first = worker.process_batch()
    dispatcher.dispatch_once()
    routed_owner = case.get("OwnerId")
    poller.poll(connector)
    echo = worker.process_batch()
    case["OwnerId"] = "005000000000077AAA"
    case["LastModifiedById"] = "005000000000042AAA"
    case["SystemModstamp"] = case["LastModifiedDate"] = sf_time(datetime.now(UTC))
    poller.poll(connector)
    moved = worker.process_batch()

    assert first.decided == 1
    assert str(routed_owner).startswith("00G")
    assert len(fake_salesforce.case_comments) == 1
    assert echo.skipped == 1
    assert moved.skipped == 1
    assert count(store, decisions) == 1
    assert count(store, outbox_actions) == 1
    assert count(store, audit_log, event="transfer") == 1
    assert case["OwnerId"] == "005000000000077AAA"
