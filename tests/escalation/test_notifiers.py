"""The log notifier and the notifier registry."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from router.escalation.notifiers import LogNotifier, deliverers
from router.intake.plugin import PermanentDeliveryError, load_notifiers


@dataclass(frozen=True)
class NotificationAction:
    """An outbox action with the attributes `deliver` reads."""

    payload: dict[str, Any] = field(default_factory=dict)
    kind: str = "notification"
    id: int = 3
    system: str = "log"
    instance: str = "default"
    ticket_key: str = "salesforce:00004711"
    record_id: str | None = None
    marker: str = "opsroute:notify:12:1"


def test_log_notifier_logs_without_context(caplog: pytest.LogCaptureFixture) -> None:
    action = NotificationAction(
        payload={
            "notification_type": "info",
            "target": "account_manager:dana.lopez@example.com",
            "reason": "renewal soon",
            "context": {"account": {"arr": 250000}},
        }
    )
    with caplog.at_level(logging.INFO, logger="router.escalation.notifiers"):
        result = LogNotifier().deliver(action)
    assert result.marker_found is False
    assert "account_manager:dana.lopez@example.com" in caplog.text
    assert "opsroute:notify:12:1" in caplog.text
    assert "250000" not in caplog.text


def test_log_notifier_rejects_other_kinds() -> None:
    with pytest.raises(PermanentDeliveryError, match="notification actions only"):
        LogNotifier().deliver(NotificationAction(kind="task"))


def test_log_notifier_is_registered() -> None:
    notifiers = load_notifiers(session_factory=None)
    assert isinstance(notifiers[("log", "default")], LogNotifier)


def test_connectors_win_over_notifiers() -> None:
    connector = object()
    merged = deliverers(
        {("log", "default"): connector}, {("log", "default"): LogNotifier()}
    )
    assert merged == {("log", "default"): connector}
