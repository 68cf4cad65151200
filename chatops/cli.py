"""`opsroute slack ...`: run the Slack app in Socket Mode."""

from __future__ import annotations

import logging

import click
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from chatops.app import ChatopsApp
from chatops.settings import SlackSettings
from router.mapping import load_mappings
from router.settings import CoreSettings
from router.store.db import make_engine, session_factory

logger = logging.getLogger(__name__)


class SocketModeSettingsError(click.UsageError):
    """A setting that Socket Mode needs is missing."""


@click.group()
def slack() -> None:
    """Run the Slack app outside `opsroute serve`."""


def build_socket_mode_handler(
    settings: SlackSettings, core: CoreSettings | None = None
) -> SocketModeHandler:
    """Build the Socket Mode handler; it connects only when started.

    Raises:
        SocketModeSettingsError: the app token or the bot token is missing.
    """
    missing = [
        name
        for name, value in (
            ("OPSROUTE_SLACK_APP_TOKEN", settings.app_token),
            ("OPSROUTE_SLACK_BOT_TOKEN", settings.bot_token),
        )
        if value is None
    ]
    if missing or settings.app_token is None:
        raise SocketModeSettingsError(
            "Socket Mode needs " + " and ".join(missing) + "; the app token is an "
            "app-level token (xapp-...) with the connections:write scope."
        )
    core = core or CoreSettings()
    app = ChatopsApp(
        settings=settings,
        session_factory=session_factory(make_engine(core.database_url)),
        mappings=load_mappings(core.mappings_dir),
        # Socket Mode messages come over the app's own authenticated connection,
        # so they carry no signature.
        verify_requests=False,
    )
    return SocketModeHandler(
        app.bolt,
        app_token=settings.app_token.get_secret_value(),
        web_client=WebClient(base_url=settings.api_base_url),
    )


@slack.command("socket")
def socket() -> None:
    """Connect to Slack in Socket Mode and serve until interrupted.

    For workspaces where Slack cannot reach a public URL. The outbox dispatcher
    still runs in `opsroute serve`.
    """
    handler = build_socket_mode_handler(SlackSettings())
    logger.info("Connecting to Slack in Socket Mode")
    handler.start()
