"""`POST /webhooks/{system}[/{instance}]`: verify, store durably, then acknowledge.

The checks run in this order, and the first that fails sets the response:

1. the body size, from Content-Length and while the body streams in (413);
2. the system and instance (404);
3. the webhook secret being configured (503 naming the setting);
4. the connector's signature check and parsing (its WebhookError status: 400, 401,
   403 or 415).

The events then go to the group-commit writer, and the connector's acknowledgement
is sent only after their commit (503 when the database cannot store them). Nothing
is stored for a rejected request.
"""

from __future__ import annotations

import logging

import anyio
from starlette.requests import Request
from starlette.responses import Response

from router.intake.plugin import (
    DEFAULT_INSTANCE,
    Connector,
    ParsedWebhook,
    WebhookError,
    WebhookRequest,
)
from router.service.metrics import ServiceMetrics
from router.service.views.common import error_response, runtime_of
from router.service.writer import WriterUnavailableError

logger = logging.getLogger(__name__)

# Bodies larger than this are verified and parsed on a worker thread, so a large
# Salesforce batch does not hold up the event loop.
INLINE_PARSE_BYTES = 64 * 1024


class BodyTooLargeError(ValueError):
    """The request body is over the configured limit."""

    def __init__(self, limit: int, *, declared: int | None = None) -> None:
        size = f"Content-Length {declared}" if declared is not None else "The body"
        super().__init__(
            f"{size} is over the limit of {limit} bytes; send smaller batches or "
            "raise OPSROUTE_MAX_BODY_BYTES."
        )


class InvalidContentLengthError(ValueError):
    """The Content-Length header is not a non-negative integer."""


async def read_limited_body(request: Request, *, limit: int) -> bytes:
    """Read the request body, failing as soon as it is known to exceed `limit`.

    Raises:
        BodyTooLargeError: Content-Length or the bytes received exceed the limit.
        InvalidContentLengthError: Content-Length is not a number.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise InvalidContentLengthError(
                f"Content-Length {declared[:40]!r} is not a number of bytes."
            ) from None
        if length < 0:
            raise InvalidContentLengthError(f"Content-Length {length} is negative.")
        if length > limit:
            raise BodyTooLargeError(limit, declared=length)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise BodyTooLargeError(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def receive_webhook(request: Request) -> Response:
    """Verify, store and acknowledge one webhook request."""
    runtime = runtime_of(request)
    system = request.path_params["system"]
    instance = request.path_params.get("instance", DEFAULT_INSTANCE)
    metrics = runtime.metrics
    # Only configured systems become metric labels, so requests to made-up paths
    # cannot grow the metrics without bound.
    label = system if any(s == system for s, _ in runtime.connectors) else "unknown"

    try:
        body = await read_limited_body(request, limit=runtime.settings.max_body_bytes)
    except BodyTooLargeError as error:
        return _reject(metrics, label, 413, str(error), "too_large")
    except InvalidContentLengthError as error:
        return _reject(metrics, label, 400, str(error), "invalid")

    connector = runtime.connectors.get((system, instance))
    if connector is None:
        known = ", ".join(f"{s}/{i}" for s, i in sorted(runtime.connectors)) or "none"
        return _reject(
            metrics,
            label,
            404,
            f"No webhook for system {system!r} instance {instance!r}; "
            f"configured: {known}.",
            "unknown_system",
        )
    missing = connector.webhook_secret_setting()
    if missing is not None:
        return _reject(
            metrics,
            label,
            503,
            f"Webhooks of {system}/{instance} are not accepted because its secret "
            f"is not configured; set {missing}.",
            "not_configured",
        )

    webhook = WebhookRequest(
        system=system,
        instance=instance,
        method=request.method,
        path=request.url.path,
        headers=dict(request.headers),
        body=body,
        content_type=request.headers.get("content-type", ""),
        remote_addr=request.client.host if request.client else None,
    )
    try:
        parsed = await _parse(connector, webhook)
    except WebhookError as error:
        metrics.events_received.labels(system=system, outcome="rejected").inc()
        metrics.webhook_requests.labels(system=system, status=error.status_code).inc()
        logger.info(
            "Rejected %s webhook with %d: %s",
            system,
            error.status_code,
            error.message,
            extra={"system": system, "instance": instance},
        )
        if error.response_body is not None:
            return Response(
                error.response_body,
                status_code=error.status_code,
                media_type=error.response_content_type or "application/json",
            )
        return error_response(error.status_code, error.message)

    if parsed.events:
        try:
            stored = await runtime.writer.store(
                parsed.events, timeout=runtime.settings.ack_timeout_seconds
            )
        except WriterUnavailableError as error:
            return _reject(metrics, label, 503, str(error), "unavailable")
        new = sum(stored)
        if new:
            metrics.events_received.labels(system=system, outcome="stored").inc(new)
        if len(stored) - new:
            metrics.events_received.labels(system=system, outcome="duplicate").inc(
                len(stored) - new
            )
        for event, is_new in zip(parsed.events, stored, strict=True):
            logger.debug(
                "Stored %s event",
                system,
                extra={
                    "record": event.record_key,
                    "delivery_id": event.delivery_id,
                    "duplicate": not is_new,
                },
            )
    metrics.webhook_requests.labels(system=system, status=200).inc()
    return Response(
        parsed.ack_body, status_code=200, media_type=parsed.ack_content_type
    )


async def _parse(connector: Connector, webhook: WebhookRequest) -> ParsedWebhook:
    if len(webhook.body) <= INLINE_PARSE_BYTES:
        return connector.parse_webhook(webhook)
    return await anyio.to_thread.run_sync(connector.parse_webhook, webhook)


def _reject(
    metrics: ServiceMetrics,
    system: str,
    status: int,
    message: str,
    outcome: str,
) -> Response:
    metrics.events_received.labels(system=system, outcome=outcome).inc()
    metrics.webhook_requests.labels(system=system, status=status).inc()
    logger.info("Rejected %s webhook with %d: %s", system, status, message)
    return error_response(status, message)
