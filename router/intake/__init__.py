"""Intake: the connector protocol and the webhook and delivery values it exchanges."""

from __future__ import annotations

from router.intake.plugin import (
    DEFAULT_INSTANCE,
    ENTRY_POINT_GROUP,
    Connector,
    DeliveryAction,
    DeliveryResult,
    NewInboxEvent,
    ParsedWebhook,
    PermanentDeliveryError,
    RetryableDeliveryError,
    WebhookError,
    WebhookRequest,
    load_connectors,
)

__all__ = [
    "DEFAULT_INSTANCE",
    "ENTRY_POINT_GROUP",
    "Connector",
    "DeliveryAction",
    "DeliveryResult",
    "NewInboxEvent",
    "ParsedWebhook",
    "PermanentDeliveryError",
    "RetryableDeliveryError",
    "WebhookError",
    "WebhookRequest",
    "load_connectors",
]
