"""The Bolt app of opsroute, its HTTP handler for `/slack/events`, and its factory.

Nothing here calls Slack while the app is built. A custom `authorize` function
hands Bolt the bot token, so Bolt makes no `auth.test` call either, neither at
start-up nor on the first request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chatops.listeners import Listeners
from chatops.messages import (
    ACTION_ACK,
    ACTION_ESCALATE,
    ACTION_REASSIGN,
    ACTION_REVIEW_APPROVE,
    ACTION_REVIEW_PICK,
    ACTION_WHY,
)
from chatops.people import PeopleDirectory, load_people
from chatops.permissions import RoleResolver, load_role_map
from chatops.settings import SlackSettings
from router.mapping import MappingSet

logger = logging.getLogger(__name__)

COMMAND = "/opsroute"
# Slack payloads are a few kilobytes; anything far larger is not from Slack.
MAX_BODY_BYTES = 1024 * 1024
ACTION_IDS = (
    ACTION_ACK,
    ACTION_REASSIGN,
    ACTION_ESCALATE,
    ACTION_WHY,
    ACTION_REVIEW_APPROVE,
    ACTION_REVIEW_PICK,
)


class ChatopsApp:
    """The Bolt app with its listeners, roles and people."""

    def __init__(
        self,
        *,
        settings: SlackSettings,
        session_factory: sessionmaker[Session],
        mappings: MappingSet,
        verify_requests: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if settings.bot_token is None:
            raise ValueError(
                "The Slack app needs OPSROUTE_SLACK_BOT_TOKEN; set it to the bot "
                "token (xoxb-...) of the installed app."
            )
        self.settings = settings
        token = settings.bot_token.get_secret_value()
        self.client = WebClient(token=token, base_url=settings.api_base_url)
        role_map = load_role_map(settings.roles_file)
        self.listeners = Listeners(
            settings=settings,
            session_factory=session_factory,
            groups=mappings.taxonomy.group_names,
            roles=RoleResolver(
                role_map,
                client=self.client,
                cache_seconds=settings.usergroup_cache_seconds,
            ),
            people=PeopleDirectory(
                load_people(settings.people_file), client=self.client
            ),
            clock=clock or (lambda: datetime.now(UTC)),
        )
        secret = (
            settings.signing_secret.get_secret_value()
            if settings.signing_secret
            else None
        )
        self.bolt = App(
            signing_secret=secret,
            # Bolt sets the token of each request's client from `authorize`.
            client=WebClient(base_url=settings.api_base_url),
            authorize=_authorize_with(token),
            request_verification_enabled=verify_requests,
            process_before_response=False,
            raise_error_for_unhandled_request=False,
        )
        self._register()

    def _register(self) -> None:
        listeners = self.listeners
        self.bolt.command(COMMAND)(
            ack=listeners.ack_command, lazy=[listeners.run_command]
        )
        for action_id in ACTION_IDS:
            self.bolt.action(action_id)(
                ack=listeners.ack_action, lazy=[listeners.run_action]
            )
        self.bolt.event("app_mention")(
            ack=listeners.ack_event, lazy=[listeners.run_mention]
        )


def _authorize_with(token: str) -> Callable[..., AuthorizeResult]:
    def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            bot_token=token,
        )

    return authorize


class SlackEventsHandler:
    """Serve `/slack/events`: Bolt verifies the signature and runs the listeners.

    Bolt's dispatch blocks until the ack function has run, so it runs on a worker
    thread and the event loop stays free for other requests.
    """

    def __init__(self, app: ChatopsApp | None, *, missing: list[str]) -> None:
        self.app = app
        self.missing = missing

    async def handle(self, request: Request) -> Response:
        """Verify and dispatch one Slack request; 503 while settings are missing."""
        if self.app is None:
            return JSONResponse(
                {
                    "error": "The Slack app is not configured; set "
                    + " and ".join(self.missing)
                    + "."
                },
                status_code=503,
            )
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse(
                {"error": f"The body is over the limit of {MAX_BODY_BYTES} bytes."},
                status_code=413,
            )
        bolt_request = to_bolt_request(request, body)
        bolt_response = await anyio.to_thread.run_sync(
            self.app.bolt.dispatch, bolt_request
        )
        return to_starlette_response(bolt_response)


def create_events_handler(
    *,
    session_factory: sessionmaker[Session],
    mappings: MappingSet,
    settings: SlackSettings | None = None,
    **_: Any,
) -> SlackEventsHandler:
    """Build the `/slack/events` handler (entry point `opsroute.chatops:slack`)."""
    settings = settings or SlackSettings()
    missing = settings.missing_for_http()
    if missing:
        logger.warning("Slack app is off until %s are set", " and ".join(missing))
        return SlackEventsHandler(None, missing=missing)
    app = ChatopsApp(
        settings=settings, session_factory=session_factory, mappings=mappings
    )
    logger.info("Slack app ready at /slack/events, Web API %s", settings.api_url)
    return SlackEventsHandler(app, missing=[])
