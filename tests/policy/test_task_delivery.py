"""Task actions at each connector: created once, linked to the ticket's record."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from service.support import servicenow_connector

from connectors.jira import JiraConnector
from connectors.salesforce import SalesforceConnector
from connectors.settings import JiraSettings, SalesforceSettings
from router.intake.plugin import PermanentDeliveryError
from router.mapping import MappingSet, load_mappings
from router.mapping.transforms import salesforce_id18
from router.sandbox.jira import FakeJira
from router.sandbox.salesforce import FakeSalesforce
from router.sandbox.servicenow import FakeServiceNow

MARKER = "opsroute:task:41:refund_approval"


@dataclass(frozen=True)
class TaskAction:
    """An outbox task action with the attributes `deliver` reads."""

    system: str
    ticket_key: str
    record_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    marker: str = MARKER
    kind: str = "task"
    instance: str = "default"
    id: int = 7


def task_payload(parent: str, **changes: Any) -> dict[str, Any]:
    return {
        "task_type": "refund_approval",
        "title": "Approve the refund",
        "description": "Check the duplicate charge.",
        "assignee": "Finance Operations",
        "parent_record_id": parent,
    } | changes


@pytest.fixture(scope="module")
def mappings() -> MappingSet:
    return load_mappings()


@pytest.fixture
def fake_servicenow() -> Iterator[FakeServiceNow]:
    with FakeServiceNow(lifetime_seconds=60) as fake:
        yield fake


def test_servicenow_task_created_once(
    fake_servicenow: FakeServiceNow, mappings: MappingSet
) -> None:
    group_id = fake_servicenow.add_group("Finance Operations")
    record = fake_servicenow.add_record("incident", {"number": "INC0000041"})
    connector = servicenow_connector(api_url=fake_servicenow.url, mappings=mappings)
    action = TaskAction(
        system="servicenow",
        ticket_key="servicenow:INC0000041",
        record_id=record["sys_id"],
        payload=task_payload(record["sys_id"]),
    )
    first = connector.deliver(action)
    second = connector.deliver(action)
    [task] = fake_servicenow.tables["incident_task"].values()
    assert first.marker_found is False
    assert second.marker_found is True
    assert task["incident"] == record["sys_id"]
    assert task["assignment_group"] == group_id
    assert MARKER in task["description"]


def test_servicenow_task_without_title_rejected(
    fake_servicenow: FakeServiceNow, mappings: MappingSet
) -> None:
    connector = servicenow_connector(api_url=fake_servicenow.url, mappings=mappings)
    action = TaskAction(
        system="servicenow",
        ticket_key="servicenow:INC0000041",
        record_id="a" * 32,
        payload=task_payload("a" * 32, title=" "),
    )
    with pytest.raises(PermanentDeliveryError, match="has no title"):
        connector.deliver(action)


def test_jira_subtask_created_once(mappings: MappingSet) -> None:
    with FakeJira(lifetime_seconds=60) as fake:
        fake.add_issue(
            {
                "id": "30542",
                "key": "HELP-2042",
                "fields": {"project": {"key": "HELP"}, "summary": "Modules missing"},
            }
        )
        connector = JiraConnector(
            settings=JiraSettings(
                url=fake.url,
                user=fake.user,
                api_token=SecretStr(fake.token),
                timeout_seconds=5,
            ),
            mappings=mappings,
        )
        action = TaskAction(
            system="jira",
            ticket_key="jira:HELP-2042",
            record_id="30542",
            payload=task_payload("30542"),
        )
        first = connector.deliver(action)
        second = connector.deliver(action)
        subtasks = [issue for issue in fake.issues.values() if issue["id"] != "30542"]
    assert first.marker_found is False
    assert second.marker_found is True
    assert len(subtasks) == 1
    assert subtasks[0]["fields"]["issuetype"] == {"name": "Sub-task"}
    assert subtasks[0]["fields"]["components"] == [{"name": "Finance Operations"}]


def test_salesforce_task_created_once(tmp_path: Path, mappings: MappingSet) -> None:
    case_id = salesforce_id18("5005e00000BdDsP")
    with FakeSalesforce(certificate_dir=tmp_path, lifetime_seconds=60) as fake:
        fake.add_case({"Id": case_id, "CaseNumber": "00004711"})
        connector = SalesforceConnector(
            settings=SalesforceSettings(
                instance_url=fake.url, session_id=SecretStr(fake.session_id)
            ),
            mappings=mappings,
            http_session=fake.client_session(),
        )
        action = TaskAction(
            system="salesforce",
            ticket_key="salesforce:00004711",
            record_id=case_id,
            payload=task_payload(case_id),
        )
        first = connector.deliver(action)
        second = connector.deliver(action)
        tasks = list(fake.tasks)
    assert first.marker_found is False
    assert second.marker_found is True
    assert len(tasks) == 1
    assert tasks[0]["WhatId"] == case_id
    assert "Assignee: Finance Operations" in tasks[0]["Description"]
