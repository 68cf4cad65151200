"""Outbox actions the worker queues for a decision."""

from __future__ import annotations

from router.schemas import Decision, DecisionAction, Ticket
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
    notifier: str = "slack",
    target: str = "group:reviewers",
) -> NewOutboxAction | None:
    """Build the notification that posts a review decision to the review queue.

    Returns None for an auto-routed decision. The payload follows the
    `notification` contract. The `slack` notifier posts a `group:` target to its
    review channel, with the candidates and the approve and pick controls.
    """
    # TODO: Call this from the worker next to write_back_action, once installs
    # without a notifier no longer keep such actions pending for ever.
    if decision.action is DecisionAction.AUTO_ROUTE:
        return None
    payload: dict[str, object] = {
        "notification_type": "review",
        "target": target,
        "reason": reason_line(decision),
        "ticket_key": ticket.key,
        "title": ticket.title,
        "priority": ticket.priority,
        "resolver_group": decision.resolver_group,
        "confidence": round(decision.confidence, 4),
        "candidates": [
            {"group": candidate.group, "score": round(candidate.probability, 4)}
            for candidate in decision.candidates
        ],
        "context": dict(ticket.context),
        "escalation": None,
        "link": None,
    }
    return NewOutboxAction(
        system=notifier,
        instance="default",
        kind=ActionKind.NOTIFICATION.value,
        ticket_key=ticket.key,
        record_id=ticket.record_id,
        payload=payload,
        marker=f"opsroute:notify:{decision_id}:review",
        decision_id=decision_id,
    )
