"""The enricher interface: what an enricher declares and how it fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from router.schemas import Ticket


class EnrichmentError(RuntimeError):
    """An enricher call that failed; `retryable` is true when a retry may succeed."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@runtime_checkable
class Enricher(Protocol):
    """A source of ticket context, such as a CRM, an ERP or the store.

    `fields` are the context paths the enricher adds (`account.tier`,
    `finance_hold`); they are marked unknown when a call fails.
    """

    name: str
    fields: tuple[str, ...]

    def cache_key(self, ticket: Ticket) -> str | None:
        """Return the key that identifies the lookup, or None to skip the ticket.

        Tickets with the same key share one call and one cache entry, so the
        key must cover everything the call reads (an account id, a service).
        """
        ...

    def fetch(self, ticket: Ticket, *, timeout: float) -> dict[str, Any]:
        """Look the ticket up and return the context to merge, as nested keys.

        Raises:
            EnrichmentError: the lookup failed; `retryable` for timeouts and 5xx.
        """
        ...


# An enricher factory, the object each `opsroute.enrichers` entry point names.
EnricherFactory = Callable[..., Enricher]


def build_context(fields: dict[str, Any]) -> dict[str, Any]:
    """Turn `{"account.tier": "premium"}` into `{"account": {"tier": "premium"}}`."""
    nested: dict[str, Any] = {}
    for path, value in fields.items():
        target = nested
        *parents, last = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return nested


def merge_context(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Return `base` with `extra` merged in, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_context(merged[key], value)
        else:
            merged[key] = value
    return merged
