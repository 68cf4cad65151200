"""Builders for the tickets and decisions that the store tests save."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from router.schemas import (
    Candidate,
    Decision,
    DecisionAction,
    Explanation,
    GroupExplanation,
    Ticket,
)

TicketBuilder = Callable[..., Ticket]
DecisionBuilder = Callable[..., Decision]


def build_ticket(**overrides: Any) -> Ticket:
    """Return a Jira ticket with realistic fields; keyword arguments replace them."""
    fields: dict[str, Any] = {
        "source_system": "jira",
        "external_id": "HDFS-123",
        "record_id": "10001",
        "title": "NameNode fails over every night",
        "description": "Standby NameNode takes over at 02:00 and the jobs fail.",
        "requester": "ops@example.com",
        "account": "Acme",
        "priority": 2,
        "urgency": 1,
        "impact": 2,
        "category": "storage",
        "issue_type": "Bug",
        "labels": ["hdfs", "ha"],
        "created_at": datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
        "context": {"account_tier": "gold"},
        "raw": {"fields": {"summary": "NameNode fails over every night"}},
    }
    fields.update(overrides)
    return Ticket(**fields)


def build_decision(ticket: Ticket, **overrides: Any) -> Decision:
    """Return a decision for `ticket`; keyword arguments replace its fields."""
    fields: dict[str, Any] = {
        "ticket_key": ticket.key,
        "resolver_group": "storage-team",
        "intent": "incident",
        "urgency": 1,
        "confidence": 0.91,
        "action": DecisionAction.AUTO_ROUTE,
        "threshold": 0.75,
        "candidates": [
            Candidate(group="storage-team", probability=0.91),
            Candidate(group="platform-team", probability=0.06),
        ],
        "explanation": Explanation(
            chosen=GroupExplanation(group="storage-team", score=2.4),
            runner_up=GroupExplanation(group="platform-team", score=0.4),
            notes=["description mentions NameNode"],
        ),
        "model_version": "routing-2025.03.1",
        "policy_version": "policy-7",
        "decided_at": datetime(2025, 3, 1, 9, 31, tzinfo=UTC),
    }
    fields.update(overrides)
    return Decision(**fields)


@pytest.fixture
def make_ticket() -> TicketBuilder:
    """Return the ticket builder."""
    return build_ticket


@pytest.fixture
def make_decision() -> DecisionBuilder:
    """Return the decision builder."""
    return build_decision
