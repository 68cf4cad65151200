"""The FastAPI application of `opsroute serve`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from router import __version__
from router.service.runtime import ServiceRuntime
from router.service.settings import ServiceSettings
from router.service.views.health import healthz, readyz
from router.service.views.metrics import metrics
from router.service.views.slack import receive_slack_event
from router.service.views.webhooks import receive_webhook


def create_app(
    settings: ServiceSettings | None = None, *, runtime: ServiceRuntime | None = None
) -> FastAPI:
    """Build the app; its lifespan starts and stops the replica's background parts.

    Args:
        settings: the service settings; read from the environment when omitted.
        runtime: a runtime built by the caller (tests pass one with fake
            connectors or a failing insert); built from `settings` when omitted.
    """
    if runtime is None:
        runtime = ServiceRuntime(settings or ServiceSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            # Stopping joins threads, so it runs off the event loop.
            await anyio.to_thread.run_sync(runtime.stop)

    app = FastAPI(
        title="opsroute",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    # Plain Starlette routes: each endpoint reads the request itself, which skips
    # FastAPI's parameter parsing on the webhook path.
    app.add_route("/healthz", healthz, methods=["GET"])
    app.add_route("/readyz", readyz, methods=["GET"])
    app.add_route("/metrics", metrics, methods=["GET"])
    app.add_route("/webhooks/{system}", receive_webhook, methods=["POST"])
    app.add_route("/webhooks/{system}/{instance}", receive_webhook, methods=["POST"])
    app.add_route("/slack/events", receive_slack_event, methods=["POST"])
    return app
