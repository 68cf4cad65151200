"""`opsroute serve` finds the Slack app through its entry point at `/slack/events`."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from slack_support import (
    BOT_TOKEN,
    SIGNING_SECRET,
    STRANGER,
    signed_headers,
    slash_command,
    write_mapping_files,
)

from router.sandbox.slack import FakeSlack
from router.service.app import create_app
from router.service.runtime import ServiceRuntime
from router.service.settings import ServiceSettings

FORM = "application/x-www-form-urlencoded"


def _client(tmp_path: Path) -> TestClient:
    # Without `with`, the lifespan does not run, so no background part starts.
    settings = ServiceSettings(
        database_url=f"sqlite:///{tmp_path / 'serve.db'}",
        model_cache_dir=tmp_path / "cache",
    )
    return TestClient(create_app(runtime=ServiceRuntime(settings)))


def test_unconfigured_app_names_settings(tmp_path: Path) -> None:
    response = _client(tmp_path).post("/slack/events", content=b"")

    assert response.status_code == 503
    assert response.json()["error"] == (
        "The Slack app is not configured; set OPSROUTE_SLACK_SIGNING_SECRET and "
        "OPSROUTE_SLACK_BOT_TOKEN."
    )


def test_serve_answers_signed_help(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack
) -> None:
    roles, people = write_mapping_files(tmp_path)
    monkeypatch.setenv("OPSROUTE_SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("OPSROUTE_SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("OPSROUTE_SLACK_API_URL", f"{fake_slack.url}/api/")
    monkeypatch.setenv("OPSROUTE_SLACK_ROLES_FILE", str(roles))
    body = slash_command(
        "help", user_id=STRANGER, response_url=fake_slack.response_url()
    )

    response = _client(tmp_path).post(
        "/slack/events", content=body, headers=signed_headers(body, content_type=FORM)
    )

    assert response.status_code == 200
    assert response.json()["response_type"] == "ephemeral"
    assert "/opsroute why TICKET" in response.json()["text"]
    assert fake_slack.calls == []


def test_serve_rejects_bad_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack
) -> None:
    roles, _ = write_mapping_files(tmp_path)
    monkeypatch.setenv("OPSROUTE_SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("OPSROUTE_SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("OPSROUTE_SLACK_ROLES_FILE", str(roles))
    body = slash_command(
        "help", user_id=STRANGER, response_url=fake_slack.response_url()
    )
    headers = signed_headers(body, content_type=FORM, secret="wrong")

    response = _client(tmp_path).post("/slack/events", content=body, headers=headers)

    assert response.status_code == 401


def test_dispatcher_delivers_through_notifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSROUTE_SLACK_BOT_TOKEN", BOT_TOKEN)
    settings = ServiceSettings(
        database_url=f"sqlite:///{tmp_path / 'serve.db'}",
        model_cache_dir=tmp_path / "cache",
    )

    runtime = ServiceRuntime(settings)

    assert ("slack", "default") in runtime.dispatcher.writable_targets()
    assert ("slack", "default") not in runtime.connectors
