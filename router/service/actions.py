"""Outbox actions and stored effects the worker queues for a decision."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from sqlalchemy import insert
from sqlalchemy.orm import Session

from router.escalation.messages import (
    TicketSummary,
    notification_action,
    notification_marker,
)
from router.escalation.notifiers import NotifierSettings
from router.escalation.service import start_escalation
from router.schemas import Decision, DecisionAction, Ticket
from router.store.models import audit_log, policy_outcomes
from router.store.outbox import NewOutboxAction
from router.store.records import ActionKind, InboxEvent

# Terms named in a write-back note, per side of the explanation.
NOTE_TERMS = 3


def decision_marker(decision_id: int) -> str:
    """Return the marker of a decision's write-back, unique across the outbox."""
    return f"opsroute:decision:{decision_id}"


def write_back_action(
    *, event: InboxEvent, ticket: Ticket, decision: Decision, decision_id: int
) -> NewOutboxAction | None:
    """Build the write-back of an auto-routed decision, or None for a review.

    The payload has the connector's fields (`group`, `reason`, and `table` for
    ServiceNow when the record names one) and a `note` with the explanation.
    """
    if decision.action is not DecisionAction.AUTO_ROUTE:
        return None
    payload: dict[str, object] = {
        "group": decision.resolver_group,
        "reason": reason_line(decision),
        "note": explanation_note(decision),
        "confidence": round(decision.confidence, 4),
        "decision_id": decision_id,
        "model_version": decision.model_version,
    }
    table = event.record.get("table") or event.record.get("sys_class_name")
    if event.system == "servicenow" and isinstance(table, str) and table:
        payload["table"] = table
    return NewOutboxAction(
        system=event.system,
        instance=event.instance,
        kind=ActionKind.WRITE_BACK.value,
        ticket_key=ticket.key,
        record_id=ticket.record_id or event.record_key,
        payload=payload,
        marker=decision_marker(decision_id),
        decision_id=decision_id,
    )


def reason_line(decision: Decision) -> str:
    """Return one line that says where the ticket went and why."""
    return (
        f"opsroute routed this ticket to {decision.resolver_group} with confidence "
        f"{decision.confidence:.2f} (threshold {decision.threshold:.2f}), intent "
        f"{decision.intent}."
    )


def explanation_note(decision: Decision) -> str:
    """Return the explanation summary written into the record's note."""
    chosen = decision.explanation.chosen
    lines = [reason_line(decision)]
    if chosen.terms:
        lines.append(f"Strongest signals: {_terms(chosen.terms)}.")
    runner_up = decision.explanation.runner_up
    if runner_up is not None:
        lines.append(
            f"Runner-up: {runner_up.group} (score {runner_up.score:.2f})"
            + (f", signals {_terms(runner_up.terms)}." if runner_up.terms else ".")
        )
    if decision.explanation.notes:
        lines.append("Notes: " + "; ".join(decision.explanation.notes) + ".")
    return "\n".join(lines)


def _terms(terms: dict[str, float]) -> str:
    strongest = sorted(terms.items(), key=lambda item: -abs(item[1]))[:NOTE_TERMS]
    return ", ".join(name for name, _ in strongest)


def review_notification_action(
    *,
    ticket: Ticket,
    decision: Decision,
    decision_id: int,
    settings: NotifierSettings | None = None,
) -> NewOutboxAction | None:
    """Build the notification that puts a review decision in the review queue.

    Returns None for an auto-routed decision. It goes to the configured notifier
    (`OPSROUTE_NOTIFIER`) and target (`OPSROUTE_REVIEW_TARGET`), with the top
    candidate groups that the Slack notifier offers as buttons.
    """
    if decision.action is DecisionAction.AUTO_ROUTE:
        return None
    settings = settings or notifier_settings()
    return notification_action(
        notification_type="review",
        target=settings.review_target,
        reason="; ".join(decision.explanation.notes) or "needs a review",
        ticket=_summary(ticket, decision, dict(ticket.context)),
        marker=notification_marker(str(decision_id), 0),
        decision_id=decision_id,
        settings=settings,
    )


@cache
def notifier_settings() -> NotifierSettings:
    """Return the notifier settings, read from the environment once per process."""
    return NotifierSettings()


def _summary(
    ticket: Ticket, decision: Decision, context: dict[str, object]
) -> TicketSummary:
    return TicketSummary(
        ticket_key=ticket.key,
        title=ticket.title,
        priority=decision.priority or ticket.priority,
        resolver_group=decision.resolver_group,
        confidence=round(decision.confidence, 4),
        candidates=[
            {"group": item.group, "score": round(item.probability, 4)}
            for item in decision.candidates
        ],
        context=context,
    )


def task_marker(decision_id: int, task_type: str) -> str:
    """Return the marker of a decision's task, which the connector looks for."""
    return f"opsroute:task:{decision_id}:{task_type}"


def decision_actions(
    *,
    event: InboxEvent,
    ticket: Ticket,
    decision: Decision,
    decision_id: int,
    settings: NotifierSettings | None = None,
) -> list[NewOutboxAction]:
    """Build every action of a decision: write-back, tasks and notifications.

    Tasks go to the ticket's own system, linked to its record. Notifications go
    to the configured notifier, and a review decision also notifies the review
    target (`OPSROUTE_REVIEW_TARGET`).
    """
    settings = settings or notifier_settings()
    actions: list[NewOutboxAction] = []
    write_back = write_back_action(
        event=event, ticket=ticket, decision=decision, decision_id=decision_id
    )
    if write_back is not None:
        actions.append(write_back)
    record_id = ticket.record_id or event.record_key
    table = event.record.get("table") or event.record.get("sys_class_name")
    for task in decision.tasks:
        payload: dict[str, object] = {
            "task_type": task.type,
            "title": task.title,
            "description": task.description,
            "assignee": task.assignee,
            "parent_record_id": record_id,
        }
        if event.system == "servicenow" and isinstance(table, str) and table:
            payload["table"] = table
        actions.append(
            NewOutboxAction(
                system=event.system,
                instance=event.instance,
                kind=ActionKind.TASK.value,
                ticket_key=ticket.key,
                record_id=record_id,
                payload=payload,
                marker=task_marker(decision_id, task.type),
                decision_id=decision_id,
            )
        )
    actions.extend(_notifications(ticket, decision, decision_id, settings))
    return actions


def _notifications(
    ticket: Ticket, decision: Decision, decision_id: int, settings: NotifierSettings
) -> list[NewOutboxAction]:
    actions = [
        notification_action(
            notification_type="info",
            target=item.target,
            reason=item.reason,
            ticket=_summary(ticket, decision, item.context),
            marker=notification_marker(str(decision_id), number),
            decision_id=decision_id,
            settings=settings,
        )
        for number, item in enumerate(decision.notifications, start=1)
    ]
    review = review_notification_action(
        ticket=ticket, decision=decision, decision_id=decision_id, settings=settings
    )
    if review is not None:
        actions.append(review)
    return actions


def record_decision_effects(
    session: Session,
    *,
    items: Sequence[tuple[Ticket, Decision, int]],
    observe_only: frozenset[str] = frozenset(),
) -> None:
    """Store the policy outcomes, audit the enricher calls and start escalations.

    Args:
        items: (ticket, decision, decision id) of each stored decision.
        observe_only: keys of tickets from observe-only connectors, whose
            escalations are recorded in the policy outcome but never started,
            so that no on-call target is paged for them.
    """
    if not items:
        return
    session.execute(
        insert(policy_outcomes),
        [
            {
                "decision_id": decision_id,
                "ticket_key": ticket.key,
                "rules_fired": list(decision.rules_fired),
                "tasks": [task.model_dump(mode="json") for task in decision.tasks],
                "notifications": [
                    {"target": item.target, "reason": item.reason}
                    for item in decision.notifications
                ],
                "escalation": decision.escalation,
                "priority": decision.priority,
                "unknown_fields": list(decision.unknown_fields),
            }
            for ticket, decision, decision_id in items
        ],
    )
    audit_rows = [
        {
            "at": decision.decided_at,
            "event": "enrichment",
            "ticket_key": ticket.key,
            "actor": "opsroute",
            "inputs": {},
            "versions": {},
            "details": call.model_dump(mode="json", exclude_none=True),
        }
        for ticket, decision, _ in items
        for call in decision.enrichment
    ]
    if audit_rows:
        session.execute(insert(audit_log), audit_rows)
    for ticket, decision, _ in items:
        if decision.escalation is not None and ticket.key not in observe_only:
            start_escalation(
                session,
                ticket_key=ticket.key,
                policy=decision.escalation,
                now=decision.decided_at,
                reason=f"policy rules {', '.join(decision.rules_fired)}",
                priority=decision.priority,
            )
