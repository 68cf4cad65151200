"""The one place the Slack app calls the escalation engine.

The engine lives in `router.escalation.service`. It is imported at call time, so
that the rest of the Slack app works in an install without it, and each call
raises `EscalationEngineMissingError` there.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from types import ModuleType
from typing import Any

ENGINE_MODULE = "router.escalation.service"


class EscalationEngineMissingError(RuntimeError):
    """The escalation engine is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "Escalations are not available: the module router.escalation.service "
            "is not installed in this opsroute version."
        )


def _engine() -> ModuleType:
    try:
        return importlib.import_module(ENGINE_MODULE)
    except ModuleNotFoundError as error:
        if error.name is not None and ENGINE_MODULE.startswith(error.name):
            raise EscalationEngineMissingError() from None
        raise


def acknowledge(
    session: Any, *, ticket_key: str, actor: str, now: datetime
) -> Any | None:
    """Acknowledge the ticket's open escalation; return its record, or None if none."""
    return _engine().acknowledge(
        session, ticket_key=ticket_key, actor=actor, source="slack", now=now
    )


def escalate_now(
    session: Any, *, ticket_key: str, actor: str, reason: str | None, now: datetime
) -> Any:
    """Escalate the ticket to its next level at once; return the escalation record."""
    return _engine().escalate_now(
        session, ticket_key=ticket_key, actor=actor, reason=reason, now=now
    )


def current_escalation(session: Any, *, ticket_key: str) -> Any | None:
    """Return the ticket's current escalation record, or None."""
    return _engine().current_escalation(session, ticket_key=ticket_key)


def engine_available() -> bool:
    """Return whether the escalation engine can be imported."""
    try:
        _engine()
    except EscalationEngineMissingError:
        return False
    return True
