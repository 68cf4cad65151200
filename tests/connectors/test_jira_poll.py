"""Jira polling, assignment, v3 write-back and checks against the fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from connector_support import Action
from pydantic import SecretStr

from connectors.base import PollRetryPolicy
from connectors.jira import JiraConnector
from connectors.settings import JiraSettings
from router.demo.payloads import DemoRow, to_jira_issue
from router.intake.plugin import PollError
from router.mapping import MappingSet
from router.sandbox.jira import FakeJira

SINCE = datetime(2026, 11, 30, 8, 0, 45, tzinfo=UTC)
FAST_RETRIES = PollRetryPolicy(attempts=3, base_seconds=0.01, max_sleep_seconds=1.0)


@pytest.fixture
def fake_jira() -> Iterator[FakeJira]:
    with FakeJira(lifetime_seconds=60) as fake:
        yield fake


def make_connector(
    fake: FakeJira, mappings: MappingSet, **values: Any
) -> JiraConnector:
    defaults: dict[str, Any] = {
        "url": fake.url,
        "user": fake.user,
        "api_token": SecretStr(fake.token),
        "timeout_seconds": 5,
        "poll_page_size": 2,
        "deployment": "server",
    }
    settings = JiraSettings(**(defaults | values))
    connector = JiraConnector(settings=settings, mappings=mappings)
    connector.retry_policy = FAST_RETRIES
    return connector


def add_issues(fake: FakeJira, count: int, *, project: str = "HDFS") -> list[str]:
    keys = []
    for number in range(1, count + 1):
        issue = to_jira_issue(
            DemoRow(external_id=f"{project}-{number}", title=f"Balancer {number}")
        )
        fake.add_issue(issue)
        fake.touch(issue, at=SINCE + timedelta(minutes=count - number))
        keys.append(issue["key"])
    return keys


def test_offset_paging_reads_every_issue(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    add_issues(fake_jira, 5)
    connector = make_connector(fake_jira, mappings)

    keys = [record.event.record["key"] for record in connector.poll(SINCE)]

    assert keys == ["HDFS-5", "HDFS-4", "HDFS-3", "HDFS-2", "HDFS-1"]
    searches = fake_jira.calls_to("GET", "/rest/api/2/search")
    assert [call.param("startAt") for call in searches] == ["0", "2", "4"]


def test_token_paging_reads_every_issue(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    add_issues(fake_jira, 5)
    connector = make_connector(
        fake_jira, mappings, deployment="cloud", rest_api_version="3"
    )

    keys = [record.event.record["key"] for record in connector.poll(SINCE)]

    assert len(keys) == 5
    searches = fake_jira.calls_to("GET", "/rest/api/3/search/jql")
    assert [call.param("nextPageToken") for call in searches] == [
        None,
        "page-2",
        "page-4",
    ]


def test_poll_starts_at_the_minute(fake_jira: FakeJira, mappings: MappingSet) -> None:
    (issue_key,) = add_issues(fake_jira, 1)
    fake_jira.touch(fake_jira._find(issue_key) or {}, at=SINCE - timedelta(seconds=30))
    connector = make_connector(fake_jira, mappings)

    polled = list(connector.poll(SINCE))

    (search,) = fake_jira.calls_to("GET", "/rest/api/2/search")
    assert 'updated >= "2026/11/30 08:00"' in (search.param("jql") or "")
    assert [record.event.record["key"] for record in polled] == [issue_key]


def test_poll_version_is_updated_time(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    add_issues(fake_jira, 1)
    connector = make_connector(fake_jira, mappings)

    (record,) = list(connector.poll(SINCE))

    assert record.event.record_version == "2026-11-30T08:00:45.000+0000"
    assert record.updated_at == SINCE


def test_jql_injection_stays_inside_the_string(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    add_issues(fake_jira, 2, project="HDFS")
    connector = make_connector(fake_jira, mappings, project='ABC" OR project != "X\\')

    polled = list(connector.poll(SINCE))

    (search,) = fake_jira.calls_to("GET", "/rest/api/2/search")
    assert (search.param("jql") or "").startswith(
        'project = "ABC\\" OR project != \\"X\\\\" AND '
    )
    assert polled == []


def test_poll_retries_429_then_reads(fake_jira: FakeJira, mappings: MappingSet) -> None:
    add_issues(fake_jira, 1)
    connector = make_connector(fake_jira, mappings)
    fake_jira.fail_next(429, headers={"Retry-After": "0"})

    polled = list(connector.poll(SINCE))

    # The client reads the field list before each search, so the 429 hits that
    # call, and the retry repeats it before the search.
    assert len(polled) == 1
    assert [call.path.rsplit("/", 1)[1] for call in fake_jira.calls] == [
        "field",
        "field",
        "search",
    ]


def test_poll_401_names_token_setting(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    connector = make_connector(fake_jira, mappings, api_token=SecretStr("nope-8Kq"))

    with pytest.raises(PollError) as caught:
        list(connector.poll(SINCE))

    assert "OPSROUTE_JIRA_API_TOKEN" in str(caught.value)
    assert "nope-8Kq" not in str(caught.value)


def test_assignment_reads_components_and_labels(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    connector = make_connector(fake_jira, mappings)
    issue = {
        "id": "10001",
        "fields": {
            "components": [{"name": "Storage"}],
            "labels": ["opsroute-hdfs", "opsroute-reroute", "customer"],
        },
    }

    assignment = connector.assignment(issue)

    assert assignment.group == "Storage"
    assert assignment.identifiers == frozenset({"Storage", "opsroute-hdfs"})
    assert assignment.sent_back is True


def test_assignment_knows_the_api_user(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    connector = make_connector(fake_jira, mappings, integration_account_id="acc-1")
    issue = {"id": "10001", "fields": {"components": [], "labels": []}}
    ours = {"webhookEvent": "jira:issue_updated", "issue": issue}
    theirs = dict(ours)
    ours["user"] = {"accountId": "acc-1"}
    theirs["user"] = {"accountId": "acc-2"}

    assert connector.assignment(ours).by_integration is True
    assert connector.assignment(theirs).by_integration is False
    assert connector.assignment(theirs).changed_by == "acc-2"


def test_v3_write_back_posts_adf_comment(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    (key,) = add_issues(fake_jira, 1)
    issue = fake_jira._find(key) or {}
    issue["fields"]["labels"] = ["opsroute-reroute"]
    connector = make_connector(fake_jira, mappings, rest_api_version="3")
    action = Action(
        system="jira",
        ticket_key=f"jira:{key}",
        record_id=key,
        payload={"group": "HDFS", "reason": "Routed to HDFS."},
    )

    result = connector.deliver(action)

    (comment,) = fake_jira.calls_to("POST", "/rest/api/3/issue/")
    body = json.loads(comment.body)["body"]
    assert body["type"] == "doc"
    assert body["content"][0]["content"][0]["text"] == "Routed to HDFS."
    assert "opsroute-reroute" not in issue["fields"]["labels"]
    assert result.details["written_group"]


def test_check_reports_bad_token(fake_jira: FakeJira, mappings: MappingSet) -> None:
    connector = make_connector(fake_jira, mappings, api_token=SecretStr("bad"))

    (result,) = connector.check()

    assert result.ok is False
    assert "user name or password is wrong" in result.message


def test_check_reports_unknown_project(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    add_issues(fake_jira, 1)
    connector = make_connector(fake_jira, mappings, project="NOPE")

    login, project = connector.check()

    assert login.ok is True
    assert project.ok is False
    assert "no project 'NOPE'" in project.message


def test_check_reports_forbidden_project(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    add_issues(fake_jira, 1)
    fake_jira.forbidden_projects.add("HDFS")
    connector = make_connector(fake_jira, mappings, project="HDFS")

    _, project = connector.check()

    assert project.ok is False
    assert "lacks a role or permission" in project.message
