"""Builders and markers shared by the inbox, outbox and lease tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from router.store.inbox import NewInboxEvent
from router.store.outbox import NewOutboxAction

RECEIVED_AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)

# Runs a test that uses `database_url` on PostgreSQL only, for row-lock behaviour
# that SQLite does not have.
postgres_only = pytest.mark.parametrize(
    "database_url",
    [pytest.param("postgresql", marks=pytest.mark.external_service)],
    indirect=True,
)


def build_event(**overrides: Any) -> NewInboxEvent:
    """Return a ServiceNow incident update; keyword arguments replace its fields."""
    fields: dict[str, Any] = {
        "system": "servicenow",
        "instance": "default",
        "delivery_id": None,
        "record_key": "incident:9d385017c611228701d22104cc95c371",
        "record_version": "4",
        "event_type": "update",
        "record": {
            "sys_id": "9d385017c611228701d22104cc95c371",
            "number": "INC0010042",
            "short_description": "VPN drops every ten minutes",
            "sys_mod_count": "4",
        },
        "headers": {"content-type": "application/json"},
        "received_at": RECEIVED_AT,
    }
    fields.update(overrides)
    return NewInboxEvent(**fields)


def build_events(count: int, **overrides: Any) -> list[NewInboxEvent]:
    """Return `count` events with distinct delivery ids."""
    return [build_event(delivery_id=f"delivery-{n}", **overrides) for n in range(count)]


def build_action(**overrides: Any) -> NewOutboxAction:
    """Return a Jira write-back; keyword arguments replace its fields."""
    fields: dict[str, Any] = {
        "system": "jira",
        "instance": "default",
        "kind": "write_back",
        "ticket_key": "jira:HDFS-123",
        "record_id": "10001",
        "payload": {"resolver_group": "storage-team"},
        "marker": "opsroute-action-1",
        "decision_id": None,
    }
    fields.update(overrides)
    return NewOutboxAction(**fields)
