"""Helpers for connector tests: signed requests and outbox actions."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from router.intake import WebhookRequest

WEBHOOK_SECRET = "whsec-7f3a-very-secret-value"


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """Return the `sha256=<hex>` HMAC-SHA256 signature of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_request(
    system: str,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> WebhookRequest:
    """Return a webhook request as the service hands it to a connector."""
    all_headers = {"content-type": content_type, **(headers or {})}
    return WebhookRequest(
        system=system,
        instance="default",
        method="POST",
        path=f"/webhooks/{system}",
        headers={name.lower(): value for name, value in all_headers.items()},
        body=body,
        content_type=content_type,
        remote_addr="127.0.0.1",
    )


@dataclass(frozen=True)
class Action:
    """An outbox action with the attributes `Connector.deliver` reads."""

    system: str
    ticket_key: str
    record_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    marker: str = "opsroute:action:1:3f9c2a"
    kind: str = "write_back"
    instance: str = "default"
    id: int = 1
    # False makes `deliver` look for the marker, as on a retry.
    first_attempt: bool = False
