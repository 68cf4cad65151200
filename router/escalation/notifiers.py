"""Notifiers: deliverers of `notification` outbox actions, found by entry points.

A notifier has the attributes and methods of a connector that the dispatcher
uses: `system` (the notifier's name), `instance` ("default"), `can_write()`,
`missing_settings()`, `webhook_secret_setting()` and `deliver(action)`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, Protocol, runtime_checkable

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from router.intake.plugin import (
    DEFAULT_INSTANCE,
    DeliveryAction,
    DeliveryResult,
    PermanentDeliveryError,
)

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP: Final = "opsroute.notifiers"


class NotifierSettings(BaseSettings):
    """The notifier in use and the target of review requests."""

    model_config = SettingsConfigDict(env_prefix="OPSROUTE_", extra="ignore")

    notifier: str = Field(
        default="log", description="Notifier name from `opsroute.notifiers`."
    )
    review_target: str = Field(
        default="channel:#opsroute-review",
        description="Where review requests go, such as channel:#opsroute-review.",
    )


@runtime_checkable
class Notifier(Protocol):
    """A deliverer of notifications, such as a Slack app or the log."""

    system: str
    instance: str

    def webhook_secret_setting(self) -> str | None:
        """Return None: notifiers receive no webhooks."""
        ...

    def missing_settings(self) -> list[str]:
        """Return the names of unset settings that delivery needs."""
        ...

    def can_write(self) -> bool:
        """Return whether the notifier can deliver now."""
        ...

    def deliver(self, action: DeliveryAction) -> DeliveryResult:
        """Send one notification.

        Raises:
            RetryableDeliveryError: the channel is down or rate limiting.
            PermanentDeliveryError: the notification cannot be sent as it is.
        """
        ...


class LogNotifier:
    """Write each notification to the log, at info level, and nothing else.

    The log line has the type, target, ticket and reason; the context is left
    out, because it may contain financial fields.
    """

    system = "log"

    def __init__(self, *, instance: str = DEFAULT_INSTANCE) -> None:
        self.instance = instance

    def webhook_secret_setting(self) -> str | None:
        """Return None: the log notifier receives no webhooks."""
        return None

    def missing_settings(self) -> list[str]:
        """Return []: the log notifier needs no settings."""
        return []

    def can_write(self) -> bool:
        """Return True: the log is always there."""
        return True

    def deliver(self, action: DeliveryAction) -> DeliveryResult:
        """Log the notification."""
        if action.kind != "notification":
            raise PermanentDeliveryError(
                f"log notifier: action {action.id} is a {action.kind!r} action; it "
                "delivers notification actions only"
            )
        payload = action.payload
        logger.info(
            "Notification %s to %s for ticket=%s: %s [%s]",
            payload.get("notification_type"),
            payload.get("target"),
            action.ticket_key,
            payload.get("reason"),
            action.marker,
        )
        return DeliveryResult(marker_found=False, details={"logged": True})

    def __repr__(self) -> str:
        return f"LogNotifier(instance={self.instance!r})"


def create_notifier(*, instance: str = DEFAULT_INSTANCE, **_: object) -> LogNotifier:
    """Build the log notifier; it needs neither the mappings nor the store."""
    return LogNotifier(instance=instance)


def deliverers(
    connectors: Mapping[tuple[str, str], Any],
    notifiers: Mapping[tuple[str, str], Any],
) -> dict[tuple[str, str], Any]:
    """Return the connectors and the notifiers in one map for the dispatcher.

    A connector wins over a notifier of the same name.
    """
    merged: dict[tuple[str, str], Any] = dict(connectors)
    for key, notifier in notifiers.items():
        merged.setdefault(key, notifier)
    return merged
