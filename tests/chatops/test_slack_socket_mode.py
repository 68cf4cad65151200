"""`opsroute slack socket`: settings checks and the connection request to Slack."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes.slack import FakeSlack
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError

from chatops.cli import SocketModeSettingsError, build_socket_mode_handler
from chatops.settings import SlackSettings
from router.cli.main import cli
from router.settings import CoreSettings

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
