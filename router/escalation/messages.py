"""Build `notification` outbox actions in the shape every notifier reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from router.escalation.notifiers import NotifierSettings
from router.intake.plugin import DEFAULT_INSTANCE
from router.store.outbox import NewOutboxAction
from router.store.records import ActionKind

NotificationType = Literal["escalation", "review", "info", "drift"]


@dataclass(frozen=True)
class TicketSummary:
    """Ticket details shown in a notification."""

    ticket_key: str
    title: str = ""
    priority: int | None = None
    resolver_group: str | None = None
    confidence: float | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    link: str | None = None


def notification_marker(source: str, number: int) -> str:
    """Return the marker of the n-th notification of a decision or escalation.

    `source` is a decision id, or `esc-<id>` for an escalation.
    """
    return f"opsroute:notify:{source}:{number}"


def notification_action(
    *,
    notification_type: NotificationType,
    target: str,
    reason: str,
    ticket: TicketSummary,
    marker: str,
    decision_id: int | None = None,
    escalation: dict[str, Any] | None = None,
    settings: NotifierSettings | None = None,
) -> NewOutboxAction:
    """Return a notification for the configured notifier (`OPSROUTE_NOTIFIER`)."""
    notifier = (settings or NotifierSettings()).notifier
    payload: dict[str, Any] = {
        "notification_type": notification_type,
        "target": target,
        "reason": reason,
        "ticket_key": ticket.ticket_key,
        "title": ticket.title,
        "priority": ticket.priority,
        "resolver_group": ticket.resolver_group,
        "confidence": ticket.confidence,
        "candidates": list(ticket.candidates),
        "context": dict(ticket.context),
        "escalation": escalation,
        "link": ticket.link,
    }
    return NewOutboxAction(
        system=notifier,
        instance=DEFAULT_INSTANCE,
        kind=ActionKind.NOTIFICATION.value,
        ticket_key=ticket.ticket_key,
        record_id=None,
        payload=payload,
        marker=marker,
        decision_id=decision_id,
    )


def escalation_summary(
    *, policy: str, level: int, sla_due_at: str | None
) -> dict[str, Any]:
    """Return the `escalation` part of a notification payload."""
    return {"policy": policy, "level": level, "sla_due_at": sla_due_at}


def targets_text(targets: Sequence[str]) -> str:
    """Return targets joined for an audit row."""
    return ", ".join(targets)
