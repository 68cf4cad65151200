"""Jira: signed issue webhooks and write-back through the jira client."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from connector_support import WEBHOOK_SECRET, Action, sign, webhook_request
from pydantic import SecretStr

from connectors.jira import JiraConnector
from connectors.settings import JiraSettings
from router.demo.payloads import DemoRow, to_jira_issue
from router.intake import PermanentDeliveryError, RetryableDeliveryError, WebhookError
from router.mapping import MappingSet, default_mappings_dir, load_mappings
from router.sandbox.jira import FakeJira

ISSUE = to_jira_issue(DemoRow(external_id="HDFS-7", title="Balancer hangs"))
WEBHOOK = {
    "timestamp": 1705314153000,
    "webhookEvent": "jira:issue_updated",
    "issue_event_type_name": "issue_updated",
    "user": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Ana"},
    "issue": ISSUE,
    "changelog": {"id": "10400", "items": [{"field": "summary", "toString": "x"}]},
}
BODY = json.dumps(WEBHOOK).encode()
DELIVERY_ID = "2f1b1a6e-6d2c-4b4e-9a40-1f5d3c0d7e11"


@pytest.fixture
def connector(mappings: MappingSet) -> JiraConnector:
    settings = JiraSettings(webhook_secret=SecretStr(WEBHOOK_SECRET))
    return JiraConnector(settings=settings, mappings=mappings)


@pytest.fixture
def fake_jira() -> Iterator[FakeJira]:
    with FakeJira(lifetime_seconds=60) as fake:
        yield fake


@pytest.fixture
def writer(fake_jira: FakeJira, mappings: MappingSet) -> JiraConnector:
    settings = JiraSettings(
        url=fake_jira.url,
        user=fake_jira.user,
        api_token=SecretStr(fake_jira.token),
        timeout_seconds=5,
    )
    return JiraConnector(settings=settings, mappings=mappings)


def _signed(body: bytes = BODY, **headers: str) -> dict[str, str]:
    return {"X-Hub-Signature": sign(body), **headers}


def _rejection(connector: JiraConnector, body: bytes, **kwargs: object) -> WebhookError:
    with pytest.raises(WebhookError) as caught:
        connector.parse_webhook(webhook_request("jira", body, **kwargs))  # type: ignore[arg-type]
    return caught.value


def test_signed_webhook_gives_one_event(connector: JiraConnector) -> None:
    headers = _signed(**{"X-Atlassian-Webhook-Identifier": DELIVERY_ID})

    parsed = connector.parse_webhook(webhook_request("jira", BODY, headers=headers))

    assert len(parsed.events) == 1
    event = parsed.events[0]
    assert event.delivery_id == DELIVERY_ID
    assert event.record_key == ISSUE["id"]
    assert event.record_version == ISSUE["fields"]["updated"]
    assert event.event_type == "jira:issue_updated"


def test_version_falls_back_to_timestamp(connector: JiraConnector) -> None:
    issue = {**ISSUE, "fields": {"summary": "no dates"}}
    body = json.dumps({**WEBHOOK, "issue": issue}).encode()

    event = connector.parse_webhook(
        webhook_request("jira", body, headers=_signed(body))
    ).events[0]

    assert event.delivery_id is None
    assert event.record_version == "1705314153000"


def test_bad_signature_is_401(connector: JiraConnector) -> None:
    error = _rejection(connector, BODY, headers={"X-Hub-Signature": sign(b"other")})

    assert error.status_code == 401


def test_missing_signature_header_is_401(connector: JiraConnector) -> None:
    error = _rejection(connector, BODY)

    assert error.status_code == 401
    assert "X-Hub-Signature" in str(error)


def test_truncated_json_is_400(connector: JiraConnector) -> None:
    body = BODY[: len(BODY) // 2]

    error = _rejection(connector, body, headers=_signed(body))

    assert error.status_code == 400
    assert "position" in str(error)


def test_wrong_content_type_is_415(connector: JiraConnector) -> None:
    error = _rejection(
        connector,
        BODY,
        headers=_signed(),
        content_type="application/x-www-form-urlencoded",
    )

    assert error.status_code == 415
    assert "application/json" in str(error)


def test_missing_issue_is_400(connector: JiraConnector) -> None:
    body = json.dumps({"webhookEvent": "jira:issue_created"}).encode()

    error = _rejection(connector, body, headers=_signed(body))

    assert error.status_code == 400
    assert "issue.id" in str(error)


def test_other_events_store_nothing(connector: JiraConnector) -> None:
    body = json.dumps({**WEBHOOK, "webhookEvent": "comment_created"}).encode()

    parsed = connector.parse_webhook(
        webhook_request("jira", body, headers=_signed(body))
    )

    assert parsed.events == []


def test_stored_headers_drop_signature(connector: JiraConnector) -> None:
    headers = _signed(**{"X-Atlassian-Webhook-Retry": "1"})

    event = connector.parse_webhook(
        webhook_request("jira", BODY, headers=headers)
    ).events[0]

    assert "x-hub-signature" not in event.headers
    assert event.headers["x-atlassian-webhook-retry"] == "1"


def test_errors_never_contain_the_secret(connector: JiraConnector) -> None:
    for headers in ({"X-Hub-Signature": sign(BODY, "x")}, {}):
        error = _rejection(connector, BODY, headers=headers)

        assert WEBHOOK_SECRET not in str(error)


def test_webhook_record_becomes_ticket(
    connector: JiraConnector, mappings: MappingSet
) -> None:
    event = connector.parse_webhook(
        webhook_request("jira", BODY, headers=_signed())
    ).events[0]

    ticket = connector.to_ticket(event.record, mappings=mappings)

    assert ticket.external_id == "HDFS-7"
    assert ticket.title == "Balancer hangs"


def _action(**changes: object) -> Action:
    values: dict[str, object] = {
        "system": "jira",
        "ticket_key": "jira:HDFS-7",
        "record_id": ISSUE["id"],
        "payload": {"group": "Hardware", "reason": "Laptop keyword, confidence 0.91."},
    }
    values.update(changes)
    return Action(**values)  # type: ignore[arg-type]


def test_deliver_sets_component_and_comment(
    writer: JiraConnector, fake_jira: FakeJira
) -> None:
    fake_jira.add_issue(json.loads(json.dumps(ISSUE)))

    result = writer.deliver(_action())

    fields = fake_jira.issues[ISSUE["id"]]["fields"]
    comments = fake_jira.comments[ISSUE["id"]]
    assert result.marker_found is False
    assert fields["components"] == [{"name": "Hardware"}]
    assert len(comments) == 1
    assert "[opsroute:action:1:3f9c2a]" in comments[0]["body"]


def test_project_target_adds_label(writer: JiraConnector, fake_jira: FakeJira) -> None:
    fake_jira.add_issue(json.loads(json.dumps(ISSUE)))

    writer.deliver(_action(payload={"group": "HDFS", "reason": "r"}))

    assert "opsroute-hdfs" in fake_jira.issues[ISSUE["id"]]["fields"]["labels"]


def test_second_deliver_finds_marker(
    writer: JiraConnector, fake_jira: FakeJira
) -> None:
    fake_jira.add_issue(json.loads(json.dumps(ISSUE)))
    writer.deliver(_action())

    again = writer.deliver(_action())

    assert again.marker_found is True
    assert len(fake_jira.writes()) == 2
    assert len(fake_jira.comments[ISSUE["id"]]) == 1


def test_comments_are_read_newest_first(
    writer: JiraConnector, fake_jira: FakeJira
) -> None:
    fake_jira.add_issue(json.loads(json.dumps(ISSUE)))

    writer.deliver(_action())

    assert fake_jira.calls_to("GET", "/comment")[0].param("orderBy") == "-created"


def test_service_desk_comment_is_internal(
    writer: JiraConnector, fake_jira: FakeJira
) -> None:
    issue = json.loads(json.dumps(ISSUE))
    issue["fields"]["project"]["projectTypeKey"] = "service_desk"
    fake_jira.add_issue(issue)

    writer.deliver(_action())

    properties = fake_jira.comments[ISSUE["id"]][0]["properties"]
    assert properties == [{"key": "sd.public.comment", "value": {"internal": True}}]


def test_503_is_retryable(writer: JiraConnector, fake_jira: FakeJira) -> None:
    fake_jira.add_issue(json.loads(json.dumps(ISSUE)))
    fake_jira.fail_next(503, method="POST")

    with pytest.raises(RetryableDeliveryError):
        writer.deliver(_action())

    assert fake_jira.comments[ISSUE["id"]] == []


def test_404_is_permanent(writer: JiraConnector, fake_jira: FakeJira) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        writer.deliver(_action())

    assert "HTTP 404" in str(caught.value)
    assert fake_jira.token not in str(caught.value)


def test_first_attempt_comments_without_reading_comments(
    writer: JiraConnector, fake_jira: FakeJira
) -> None:
    fake_jira.add_issue(json.loads(json.dumps(ISSUE)))

    result = writer.deliver(_action(first_attempt=True))

    assert result.marker_found is False
    assert fake_jira.calls_to("GET", "/comment") == []
    assert len(fake_jira.comments[ISSUE["id"]]) == 1


@pytest.fixture
def team_mappings(tmp_path: Path) -> MappingSet:
    """Return the shipped mappings with a team custom field and a Hardware assignee."""
    folder = tmp_path / "mappings"
    shutil.copytree(default_mappings_dir(), folder)
    jira = folder / "jira.yaml"
    jira.write_text(
        jira.read_text().replace(
            "write_back:\n", "write_back:\n  group_field: fields.customfield_10050\n"
        )
    )
    taxonomy = folder / "taxonomy.yaml"
    taxonomy.write_text(
        taxonomy.read_text().replace(
            "jira: {project: HELP, component: Hardware}",
            "jira: {project: HELP, component: Hardware, team: Desk Hardware, "
            "assignee: ada.lovelace}",
        )
    )
    return load_mappings(folder)


def test_deliver_sets_team_field_and_assignee(
    fake_jira: FakeJira, team_mappings: MappingSet
) -> None:
    fake_jira.add_issue(json.loads(json.dumps(ISSUE)))
    settings = JiraSettings(
        url=fake_jira.url,
        user=fake_jira.user,
        api_token=SecretStr(fake_jira.token),
        timeout_seconds=5,
    )
    connector = JiraConnector(settings=settings, mappings=team_mappings)

    connector.deliver(_action())

    fields = fake_jira.issues[ISSUE["id"]]["fields"]
    assert fields["customfield_10050"] == {"value": "Desk Hardware"}
    assert fields["assignee"] == {"name": "ada.lovelace"}
    assert fields["components"] == [{"name": "Hardware"}]
