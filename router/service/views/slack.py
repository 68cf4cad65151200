"""`POST /slack/events`: hand Slack requests to the Slack app plugin.

The router does not import the Slack app. The app registers a factory in the entry
point group `opsroute.chatops` under the name `slack`. The factory is called once,
on the first request, as `factory(session_factory=..., mappings=...)`. It returns
a handler whose `async handle(request)` returns the response.
"""

from __future__ import annotations

import logging
import threading
from importlib.metadata import entry_points
from typing import Any, Final, Protocol

from starlette.requests import Request
from starlette.responses import Response

from router.service.views.common import error_response, runtime_of

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP: Final = "opsroute.chatops"
ENTRY_POINT_NAME: Final = "slack"

_lock = threading.Lock()


class ChatopsHandler(Protocol):
    """The handler that the Slack app's factory returns."""

    async def handle(self, request: Request) -> Response: ...


async def receive_slack_event(request: Request) -> Response:
    """Pass one Slack request to the Slack app, or return 404 if none is installed."""
    handler = _handler(request)
    if handler is None:
        return error_response(
            404,
            "No Slack app is installed; install opsroute with its chatops package "
            f"so that entry point {ENTRY_POINT_GROUP}:{ENTRY_POINT_NAME} exists.",
        )
    return await handler.handle(request)


def _handler(request: Request) -> ChatopsHandler | None:
    state = request.app.state
    with _lock:
        if not hasattr(state, "slack_handler"):
            state.slack_handler = _load_handler(request)
        handler: ChatopsHandler | None = state.slack_handler
    return handler


def _load_handler(request: Request) -> Any:
    found = entry_points(group=ENTRY_POINT_GROUP, name=ENTRY_POINT_NAME)
    if not found:
        logger.warning("No entry point %s:%s", ENTRY_POINT_GROUP, ENTRY_POINT_NAME)
        return None
    factory = next(iter(found)).load()
    runtime = runtime_of(request)
    return factory(session_factory=runtime.session_factory, mappings=runtime.mappings)
