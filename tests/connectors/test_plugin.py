"""Connector loading, settings and the helpers every connector shares."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from connector_support import Action
from pydantic import SecretStr

from connectors.base import filter_headers, note_text, parse_retry_after
from connectors.settings import JiraSettings, SalesforceSettings, ServiceNowSettings
from router.intake import Connector, load_connectors, plugin
from router.mapping import MappingSet

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
SECRET = "do-not-print-me-9c1e"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for prefix in ("SERVICENOW", "JIRA", "SALESFORCE"):
        for name in ("WEBHOOK_SECRET", "ORG_IDS", "EU_WEBHOOK_SECRET", "INSTANCE"):
            monkeypatch.delenv(f"OPSROUTE_{prefix}_{name}", raising=False)


def test_pyproject_registers_three_connectors() -> None:
    table = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]

    assert table["opsroute.connectors"] == {
        "servicenow": "connectors.servicenow:create_connector",
        "jira": "connectors.jira:create_connector",
        "salesforce": "connectors.salesforce:create_connector",
    }


def test_load_connectors_builds_default_instances(mappings: MappingSet) -> None:
    loaded = load_connectors(mappings=mappings)

    assert sorted(loaded) == [
        ("jira", "default"),
        ("salesforce", "default"),
        ("servicenow", "default"),
    ]
    for connector in loaded.values():
        assert isinstance(connector, Connector)


def test_second_instance_reads_own_variables(
    monkeypatch: pytest.MonkeyPatch, mappings: MappingSet
) -> None:
    monkeypatch.setenv("OPSROUTE_JIRA_EU_WEBHOOK_SECRET", SECRET)

    loaded = load_connectors(instances={"jira": ["default", "eu"]}, mappings=mappings)

    assert loaded[("jira", "eu")].webhook_secret_setting() is None
    assert (
        loaded[("jira", "default")].webhook_secret_setting()
        == "OPSROUTE_JIRA_WEBHOOK_SECRET"
    )


def test_instances_come_from_settings(mappings: MappingSet) -> None:
    class Settings:
        connector_instances = {"servicenow": ["emea"]}

    loaded = load_connectors(Settings(), mappings=mappings)

    assert ("servicenow", "emea") in loaded
    assert ("servicenow", "default") not in loaded


def test_no_entry_points_gives_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(plugin, "_connector_entry_points", lambda: [])

    assert load_connectors() == {}
    assert "pip install -e ." in caplog.text


def test_invalid_instance_name_is_rejected() -> None:
    with pytest.raises(ValueError) as caught:
        JiraSettings.for_instance("EU-West")

    assert "EU-West" in str(caught.value)


@pytest.mark.parametrize(
    "settings",
    [
        ServiceNowSettings(
            webhook_secret=SecretStr(SECRET), user="u", password=SecretStr(SECRET)
        ),
        JiraSettings(webhook_secret=SecretStr(SECRET), api_token=SecretStr(SECRET)),
        SalesforceSettings(
            session_id=SecretStr(SECRET),
            password=SecretStr(SECRET),
            security_token=SecretStr(SECRET),
        ),
    ],
    ids=["servicenow", "jira", "salesforce"],
)
def test_settings_repr_hides_secrets(settings: object) -> None:
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


def test_org_ids_accept_15_and_18_chars() -> None:
    settings = SalesforceSettings(org_ids="00D000000000062, 00D5g000004XxYzEAK")

    assert settings.allowed_org_ids() == {"00D000000000062EAA", "00D5g000004XxYzEAK"}


def test_invalid_org_id_names_the_value() -> None:
    with pytest.raises(ValueError) as caught:
        SalesforceSettings(org_ids="00D-not-an-id").allowed_org_ids()

    assert "00D-not-an-id" in str(caught.value)


def test_missing_settings_name_variables(mappings: MappingSet) -> None:
    connector = load_connectors(mappings=mappings)[("servicenow", "default")]

    assert connector.missing_settings() == [
        "OPSROUTE_SERVICENOW_INSTANCE",
        "OPSROUTE_SERVICENOW_USER",
        "OPSROUTE_SERVICENOW_PASSWORD",
    ]
    assert connector.can_write() is False


def test_filter_headers_drops_credentials() -> None:
    headers = {
        "Authorization": "Bearer x",
        "Proxy-Authorization": "Basic x",
        "Cookie": "a=b",
        "X-Opsroute-Signature": "sha256=00",
        "X-Hub-Signature": "sha256=00",
        "X-Atlassian-Webhook-Identifier": "id-1",
    }

    assert filter_headers(headers) == {"x-atlassian-webhook-identifier": "id-1"}


def test_note_prefers_payload_note() -> None:
    action = Action(
        system="jira",
        ticket_key="jira:HELP-1",
        record_id=None,
        payload={"note": "Line one.\nLine two.", "reason": "short"},
    )

    text = note_text(action, target="Hardware", noun="issue")

    assert text == "Line one.\nLine two.\n[opsroute:action:1:3f9c2a]"


def test_note_without_text_names_target() -> None:
    action = Action(system="jira", ticket_key="jira:HELP-1", record_id=None)

    text = note_text(action, target="Hardware", noun="issue")

    assert text.startswith("opsroute assigned this issue to Hardware.")


def test_retry_after_reads_seconds() -> None:
    assert parse_retry_after("30") == 30.0


def test_retry_after_ignores_garbage() -> None:
    assert parse_retry_after("soon") is None
