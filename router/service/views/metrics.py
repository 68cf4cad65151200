"""`/metrics` in the Prometheus text format."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from router.service.views.common import runtime_of


async def metrics(request: Request) -> Response:
    """Return this replica's `opsroute_*` metrics."""
    registry = runtime_of(request).metrics
    return Response(registry.render(), media_type=registry.content_type)
