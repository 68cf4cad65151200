"""`/healthz` (the process runs) and `/readyz` (it can do its work)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from router.service.views.common import runtime_of


async def healthz(request: Request) -> Response:
    """Return 200 while the process runs, whatever the database or the model do."""
    return JSONResponse({"status": "alive"})


async def readyz(request: Request) -> Response:
    """Return 200 when the database, migrations and model are ready, else 503.

    The body lists each check and each connector's state either way.
    """
    ready, body = runtime_of(request).readiness()
    return JSONResponse(body, status_code=200 if ready else 503)
