"""`opsroute slack socket`: settings checks and the connection request to Slack."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from slack_bolt import BoltRequest
from slack_sdk.errors import SlackApiError

from chatops.cli import SocketModeSettingsError, build_socket_mode_handler
from chatops.settings import SlackSettings
from router.cli.main import cli
from router.sandbox.slack import FakeSlack
from router.settings import CoreSettings
from router.store.db import make_engine, upgrade

APP_TOKEN = "xapp-test-app-token"


def test_socket_mode_needs_app_token() -> None:
    settings = SlackSettings(bot_token=SecretStr("xoxb-test"))

    with pytest.raises(SocketModeSettingsError) as raised:
        build_socket_mode_handler(settings)

    assert "OPSROUTE_SLACK_APP_TOKEN" in str(raised.value)
    assert "OPSROUTE_SLACK_BOT_TOKEN" not in str(raised.value)


def test_cli_reports_missing_tokens() -> None:
    result = CliRunner().invoke(cli, ["slack", "socket"])

    assert result.exit_code == 2
    assert (
        "Socket Mode needs OPSROUTE_SLACK_APP_TOKEN and OPSROUTE_SLACK_BOT_TOKEN"
        in result.output
    )


def test_connect_opens_connection_with_app_token(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    roles = tmp_path / "roles.yaml"
    roles.write_text("version: '1'\n")
    settings = SlackSettings(
        bot_token=SecretStr("xoxb-test"),
        app_token=SecretStr(APP_TOKEN),
        api_url=f"{fake_slack.url}/api/",
        roles_file=roles,
    )
    core = CoreSettings(database_url=f"sqlite:///{tmp_path / 'socket.db'}")
    handler = build_socket_mode_handler(settings, core)

    # The fake refuses the connection, as Slack does for a token of the wrong type.
    with pytest.raises(SlackApiError) as raised:
        handler.connect()

    assert raised.value.response["error"] == "not_allowed_token_type"
    (call,) = fake_slack.calls_to("POST", "/api/apps.connections.open")
    assert call.headers["authorization"] == f"Bearer {APP_TOKEN}"
    assert fake_slack.method_calls("auth.test") == []


def _socket_handler(fake_slack: FakeSlack, tmp_path: Path) -> Any:
    roles = tmp_path / "roles.yaml"
    roles.write_text("version: '1'\ndefault_role: viewer\n")
    settings = SlackSettings(
        bot_token=SecretStr("xoxb-test"),
        app_token=SecretStr(APP_TOKEN),
        api_url=f"{fake_slack.url}/api/",
        roles_file=roles,
    )
    core = CoreSettings(database_url=f"sqlite:///{tmp_path / 'socket.db'}")
    engine = make_engine(core.database_url)
    upgrade(engine)
    engine.dispose()
    return build_socket_mode_handler(settings, core)


def _command(text: str, response_url: str) -> dict[str, str]:
    return {
        "team_id": "T0TEAM",
        "channel_id": "C0ESCALATE",
        "user_id": "U0VIEW",
        "user_name": "viewer",
        "command": "/opsroute",
        "text": text,
        "response_url": response_url,
        "trigger_id": "trigger-1",
    }


def test_socket_mode_answers_help_unsigned(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    handler = _socket_handler(fake_slack, tmp_path)
    # Socket Mode requests arrive as parsed envelopes without signature headers.
    request = BoltRequest(
        body=_command("help", fake_slack.response_url()), mode="socket_mode"
    )

    response = handler.app.dispatch(request)

    assert response.status == 200
    assert "/opsroute queue" in response.body


def test_socket_mode_runs_command_after_ack(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    handler = _socket_handler(fake_slack, tmp_path)
    request = BoltRequest(
        body=_command("queue", fake_slack.response_url()), mode="socket_mode"
    )

    response = handler.app.dispatch(request)

    assert response.status == 200
    deadline = time.monotonic() + 10
    while not fake_slack.replies() and time.monotonic() < deadline:
        time.sleep(0.02)
    (reply,) = fake_slack.replies()
    assert reply["text"] == "The review queue is empty."
