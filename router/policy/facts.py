"""The values rules test: ticket fields, context, intent and model output."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from router.schemas import Ticket

# Context key that enrichment fills with the paths it could not look up.
UNKNOWN_KEY: Final = "unknown_fields"
REDACTED: Final = "[restricted]"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")


class Unknown:
    """The value of a context field whose enricher failed."""

    def __repr__(self) -> str:
        return "unknown"


UNKNOWN: Final = Unknown()


@dataclass(frozen=True)
class ModelOutput:
    """The classifier's prediction for the ticket, when it ran."""

    group: str
    confidence: float
    urgency: int | None = None


@dataclass
class TicketFacts:
    """Field lookup for one ticket at one moment (`now`)."""

    ticket: Ticket
    intent: str | None
    model: ModelOutput | None
    now: datetime
    financial_fields: Collection[str] = ()
    # Unknown paths that a condition has read, for the decision's notes.
    unknown_read: set[str] = field(default_factory=set)

    def value(self, path: str) -> Any:
        """Return the value at a dotted path, None when absent, UNKNOWN if unknown."""
        root, _, rest = path.partition(".")
        if root == "text":
            return f"{self.ticket.title}\n{self.ticket.description}"
        if root == "intent":
            return self.intent
        if root == "model":
            if self.model is None:
                self.unknown_read.add(path)
                return UNKNOWN
            return getattr(self.model, rest, None)
        if root == "context":
            return self._context_value(rest, path)
        return getattr(self.ticket, root, None)

    def is_financial(self, path: str) -> bool:
        """Return whether the path is a financial context field or lies under one."""
        if not path.startswith("context."):
            return False
        inner = path.removeprefix("context.")
        return any(
            inner == name or inner.startswith(f"{name}.")
            for name in self.financial_fields
        )

    def show(self, path: str, value: Any) -> str:
        """Return a value for a note, hiding financial values."""
        if self.is_financial(path):
            return REDACTED
        if isinstance(value, str):
            return repr(value if len(value) <= 60 else value[:57] + "...")
        return repr(value)

    def render(self, template: str) -> str:
        """Fill `{path}` placeholders from the ticket; financial values stay hidden."""

        def replace(match: re.Match[str]) -> str:
            path = match.group(1)
            if self.is_financial(path):
                return REDACTED
            value = self.value(path)
            if value is None or isinstance(value, Unknown):
                return "unknown"
            return str(value)

        return _PLACEHOLDER.sub(replace, template)

    def _context_value(self, inner: str, path: str) -> Any:
        unknown = self.ticket.context.get(UNKNOWN_KEY) or []
        if any(inner == name or inner.startswith(f"{name}.") for name in unknown):
            self.unknown_read.add(path)
            return UNKNOWN
        value: Any = self.ticket.context
        for part in inner.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return None
            value = value[part]
        return value


def as_date(value: Any) -> date | None:
    """Return a date from a date, a datetime or an ISO 8601 string, else None."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        except ValueError:
            return None
    return None


def visible_context(
    context: Mapping[str, Any], *, financial_fields: Collection[str], allowed: bool
) -> dict[str, Any]:
    """Return the context without financial fields unless the recipient is allowed."""
    if allowed:
        return {key: value for key, value in context.items() if key != UNKNOWN_KEY}
    return _without(context, prefix="", financial_fields=financial_fields)


def _without(
    context: Mapping[str, Any], *, prefix: str, financial_fields: Collection[str]
) -> dict[str, Any]:
    visible: dict[str, Any] = {}
    for key, value in context.items():
        path = f"{prefix}{key}"
        if path in financial_fields or path == UNKNOWN_KEY:
            continue
        if isinstance(value, Mapping):
            visible[key] = _without(
                value, prefix=f"{path}.", financial_fields=financial_fields
            )
        else:
            visible[key] = value
    return visible
