"""`opsroute serve`: the webhook service with its worker, dispatcher and scheduler."""

from __future__ import annotations

import logging
from typing import Any

import click
from pydantic import ValidationError

from router.service.logs import LOG_FORMATS, configure_logging

LOG_LEVELS = ("debug", "info", "warning", "error")


@click.command()
@click.option(
    "--host", help="Address to listen on [default: OPSROUTE_HOST or 127.0.0.1]."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="TCP port [default: OPSROUTE_PORT or 8080].",
)
@click.option(
    "--no-migrate",
    is_flag=True,
    help="Do not apply pending migrations; /readyz reports 503 until they are applied.",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="kv",
    show_default=True,
    help="Log lines as key=value pairs or JSON objects, on stderr.",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS),
    default="info",
    show_default=True,
    help="Lowest level logged.",
)
def serve(
    host: str | None,
    port: int | None,
    no_migrate: bool,
    log_format: str,
    log_level: str,
) -> None:
    """Serve webhooks, /healthz, /readyz and /metrics until interrupted.

    The port is bound at once. Migrations, and training a model when none is
    stored, run in the background while /readyz returns 503 with what is missing.
    """
    import uvicorn

    from router.service.app import create_app
    from router.service.settings import ServiceSettings

    configure_logging(level=getattr(logging, log_level.upper()), log_format=log_format)
    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if no_migrate:
        overrides["run_migrations"] = False
    try:
        settings = ServiceSettings(**overrides)
    except ValidationError as error:
        raise click.ClickException(f"Invalid settings: {error}") from None

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    serve()
