"""Jira: a write-back made for a person in Slack sets that person as assignee."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from connector_support import Action
from pydantic import SecretStr

from connectors.jira import JiraConnector
from connectors.settings import JiraSettings
from router.demo.payloads import DemoRow, to_jira_issue
from router.intake import RetryableDeliveryError
from router.mapping import MappingSet
from router.sandbox.jira import FakeJira

ISSUE = to_jira_issue(DemoRow(external_id="HDFS-7", title="Balancer hangs"))
ACCOUNT_ID = "5b10ac8d82e05b22cc7d4ef5"


@pytest.fixture
def fake_jira() -> Iterator[FakeJira]:
    with FakeJira(lifetime_seconds=60) as fake:
        fake.add_issue(json.loads(json.dumps(ISSUE)))
        yield fake


def _writer(
    fake_jira: FakeJira, mappings: MappingSet, deployment: str
) -> JiraConnector:
    settings = JiraSettings(
        url=fake_jira.url,
        user=fake_jira.user,
        api_token=SecretStr(fake_jira.token),
        timeout_seconds=5,
        deployment=deployment,
    )
    return JiraConnector(settings=settings, mappings=mappings)


def _acknowledgement(user: str | None, *, assign: bool = True) -> Action:
    payload: dict[str, object] = {
        "reason": "Ada Lovelace acknowledged the escalation in Slack.",
        "on_behalf_of": {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "slack_user_id": "U0ADA",
            "user": user,
        },
    }
    if assign:
        payload["assign_to_person"] = True
    return Action(
        system="jira",
        ticket_key="jira:HDFS-7",
        record_id=ISSUE["id"],
        payload=payload,
        marker="opsroute:ack:4",
        first_attempt=True,
    )


def test_cloud_assigns_by_account_id(fake_jira: FakeJira, mappings: MappingSet) -> None:
    writer = _writer(fake_jira, mappings, "cloud")

    result = writer.deliver(_acknowledgement(ACCOUNT_ID))

    fields = fake_jira.issues[ISSUE["id"]]["fields"]
    (request,) = fake_jira.calls_to("PUT", "/assignee")
    assert fields["assignee"] == {"accountId": ACCOUNT_ID}
    assert request.path == f"/rest/api/latest/issue/{ISSUE['id']}/assignee"
    assert result.details["assignee"] == ACCOUNT_ID
    assert fake_jira.calls_to("GET", "/user") == []


def test_server_assigns_by_user_name(fake_jira: FakeJira, mappings: MappingSet) -> None:
    writer = _writer(fake_jira, mappings, "server")

    writer.deliver(_acknowledgement("ada.lovelace"))

    fields = fake_jira.issues[ISSUE["id"]]["fields"]
    assert fields["assignee"] == {"name": "ada.lovelace"}


def test_assignee_set_before_comment(fake_jira: FakeJira, mappings: MappingSet) -> None:
    writer = _writer(fake_jira, mappings, "cloud")

    writer.deliver(_acknowledgement(ACCOUNT_ID))

    paths = [call.path for call in fake_jira.writes()]
    assert paths[0].endswith("/assignee")
    assert paths[-1].endswith("/comment")
    comment = fake_jira.comments[ISSUE["id"]][0]["body"]
    assert "Ada Lovelace acknowledged" in comment
    assert "[opsroute:ack:4]" in comment


def test_unmapped_person_sets_no_assignee(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    writer = _writer(fake_jira, mappings, "cloud")

    result = writer.deliver(_acknowledgement(None))

    assert fake_jira.calls_to("PUT", "/assignee") == []
    assert fake_jira.issues[ISSUE["id"]]["fields"]["assignee"] is None
    assert result.details["assignee"] is None
    assert len(fake_jira.comments[ISSUE["id"]]) == 1


def test_assignee_only_when_requested(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    writer = _writer(fake_jira, mappings, "cloud")

    writer.deliver(_acknowledgement(ACCOUNT_ID, assign=False))

    assert fake_jira.calls_to("PUT", "/assignee") == []


def test_rejected_assignee_is_named_in_comment(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    fake_jira.assignable_users = {"someone-else"}
    writer = _writer(fake_jira, mappings, "cloud")

    result = writer.deliver(_acknowledgement(ACCOUNT_ID))

    comment = fake_jira.comments[ISSUE["id"]][0]["body"]
    assert fake_jira.issues[ISSUE["id"]]["fields"]["assignee"] is None
    assert f"could not make {ACCOUNT_ID} the assignee" in comment
    assert "HTTP 400" in comment
    assert "Ada Lovelace acknowledged" in comment
    assert result.details["assignee"] is None


def test_assignee_503_is_retried_without_comment(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    writer = _writer(fake_jira, mappings, "cloud")
    fake_jira.fail_next(503, method="PUT")

    with pytest.raises(RetryableDeliveryError):
        writer.deliver(_acknowledgement(ACCOUNT_ID))

    assert fake_jira.comments[ISSUE["id"]] == []


def test_retry_after_comment_assigns_nothing(
    fake_jira: FakeJira, mappings: MappingSet
) -> None:
    writer = _writer(fake_jira, mappings, "cloud")
    writer.deliver(_acknowledgement(ACCOUNT_ID))
    retry = replace(_acknowledgement(ACCOUNT_ID), first_attempt=False)

    result = writer.deliver(retry)

    assert result.marker_found is True
    assert len(fake_jira.calls_to("PUT", "/assignee")) == 1
    assert len(fake_jira.comments[ISSUE["id"]]) == 1
