"""Read-only replies: `why`, `status` and `queue`."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.orm import Session

from chatops import escalations
from chatops.messages import context_lines
from chatops.operations import current_group
from router.store.reviews import count_open_reviews, list_open_reviews
from router.store.service import find_ticket, latest_decision

QUEUE_LIMIT = 15
TERMS_SHOWN = 5


def explain(session: Session, *, ref: str, visible_fields: Collection[str]) -> str:
    """Return why the router chose the ticket's group, as Slack mrkdwn."""
    ticket = find_ticket(session, ref=ref)
    record = latest_decision(session, ticket_id=ticket.id)
    if record is None:
        return f"{ticket.external_id} has no routing decision yet."
    decision = record.to_decision()
    chosen = decision.explanation.chosen

    lines = [
        f"*Why {ticket.external_id} went to {decision.resolver_group}*",
        f"Action {decision.action.value}, confidence {decision.confidence:.2f} "
        f"(threshold {decision.threshold:.2f}), intent {decision.intent}.",
    ]
    if chosen.terms:
        strongest = sorted(chosen.terms.items(), key=lambda item: -abs(item[1]))
        lines.append(
            "Strongest signals: "
            + ", ".join(name for name, _ in strongest[:TERMS_SHOWN])
            + "."
        )

    runner_up = decision.explanation.runner_up
    if runner_up is not None:
        lines.append(f"Runner-up: {runner_up.group} (score {runner_up.score:.2f}).")
    if decision.explanation.notes:
        lines.append("Notes: " + "; ".join(decision.explanation.notes) + ".")

    context = context_lines(ticket.payload.get("context") or {}, visible_fields)
    if context:
        lines.append("Context:")
        lines.extend(context)
    lines.append(f"Model {decision.model_version}, policy {decision.policy_version}.")
    return "\n".join(lines)


def status(session: Session, *, ref: str | None) -> str:
    """Return a ticket's group, review and escalation, or the queue summary."""
    if ref is None:
        return (
            f"{count_open_reviews(session)} tickets wait for review; "
            "`/opsroute queue` lists them."
        )
    ticket = find_ticket(session, ref=ref)
    lines = [
        f"*{ticket.external_id}* {ticket.title}".strip(),
        f"Group: {current_group(session, ticket=ticket) or 'none'}",
    ]
    decision = latest_decision(session, ticket_id=ticket.id)
    if decision is not None:
        lines.append(
            f"Last decision: {decision.action.value} to {decision.resolver_group} "
            f"(confidence {decision.confidence:.2f})"
        )
    if escalations.engine_available():
        record = escalations.current_escalation(session, ticket_key=ticket.key)
        if record is not None:
            acknowledged = (
                f", acknowledged by {record.acknowledged_by}"
                if record.acknowledged_by
                else ""
            )
            lines.append(
                f"Escalation: {record.policy} level {record.level}, "
                f"{record.status}{acknowledged}"
            )
    return "\n".join(lines)


def queue(session: Session) -> str:
    """Return the open review items, oldest first."""
    items = list_open_reviews(session, limit=QUEUE_LIMIT)
    if not items:
        return "The review queue is empty."
    total = count_open_reviews(session)
    lines = [f"*{total} tickets wait for review*"]
    for item in items:
        external_id = item.ticket_key.partition(":")[2] or item.ticket_key
        lines.append(
            f"• {external_id} {item.title[:80]}: suggested {item.suggested_group} "
            f"({item.confidence:.2f})"
        )
    if total > len(items):
        lines.append(f"... and {total - len(items)} more.")
    return "\n".join(lines)
