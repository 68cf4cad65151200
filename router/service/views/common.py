"""Helpers shared by the views."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from starlette.requests import Request
from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from router.service.runtime import ServiceRuntime


def runtime_of(request: Request) -> ServiceRuntime:
    """Return the runtime that the app factory attached to the app."""
    return cast("ServiceRuntime", request.app.state.runtime)


def error_response(status_code: int, message: str) -> JSONResponse:
    """Return `{"error": message}` with the status code."""
    return JSONResponse({"error": message}, status_code=status_code)
