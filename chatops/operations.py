"""Store changes made by Slack actions and commands.

Each function runs in the caller's transaction, queues the write-back to the
ticket's own system as a `write_back` outbox action, and returns an `Outcome`: the
reply for the user and the changes to show in the ticket's Slack messages. Nothing
here calls Slack or an ITSM system.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chatops import escalations
from chatops.people import Person
from chatops.store import messages_of_ticket
from router.intake.plugin import DEFAULT_INSTANCE
from router.store.models import outbox_actions
from router.store.outbox import NewOutboxAction, enqueue_actions
from router.store.records import ActionKind, AuditEvent, TicketRecord
from router.store.reviews import resolve_review
from router.store.service import append_audit, find_ticket, latest_decision

logger = logging.getLogger(__name__)

SOURCE = "slack"


@dataclass(frozen=True)
class Outcome:
    """The reply to the user, and what changed for the ticket's Slack messages."""

    reply: str
    ticket_key: str | None = None
    state_changes: dict[str, Any] = field(default_factory=dict)
    action_ids: tuple[int, ...] = ()


class UnknownGroupError(ValueError):
    """The group is not a resolver group of the taxonomy."""

    def __init__(self, group: str, groups: Sequence[str]) -> None:
        listed = ", ".join(groups[:12]) + (", ..." if len(groups) > 12 else "")
        super().__init__(
            f"Group {group!r} is not a resolver group; use one of: {listed}."
        )
        self.group = group


def canonical_group(group: str, groups: Sequence[str]) -> str:
    """Return the taxonomy's spelling of `group`, matched regardless of case.

    Raises:
        UnknownGroupError: no group of that name exists.
    """
    requested = group.strip().lower()
    for name in groups:
        if name.lower() == requested:
            return name
    raise UnknownGroupError(group.strip(), list(groups))


def reassign(
    session: Session,
    *,
    ref: str,
    group: str,
    person: Person,
    groups: Sequence[str],
) -> Outcome:
    """Reassign a ticket: append an "override" row and queue the write-back."""
    group = canonical_group(group, groups)
    ticket = find_ticket(session, ref=ref)
    previous = current_group(session, ticket=ticket)
    if previous == group:
        return Outcome(f"{ticket.external_id} is already assigned to {group}.")

    audit_id = append_audit(
        session,
        event=AuditEvent.OVERRIDE,
        ticket_key=ticket.key,
        actor=person.actor,
        inputs={"name": person.name, "email": person.email},
        details={"group": group, "previous_group": previous, "source": SOURCE},
    )
    reason = f"{person.name} reassigned this ticket to {group} in Slack."
    action_id = _queue_write_back(
        session,
        ticket=ticket,
        person=person,
        marker=f"opsroute:override:{audit_id}",
        payload={"group": group, "reason": reason},
    )
    logger.info("%s reassigned %s to %s", person.actor, ticket.key, group)
    return Outcome(
        f"Reassigned {ticket.external_id} from {previous or 'no group'} to {group}; "
        "the change is being written back.",
        ticket_key=ticket.key,
        state_changes={"group": group, "reassigned_by": person.name},
        action_ids=(action_id,),
    )


def choose_review_group(
    session: Session,
    *,
    ref: str,
    group: str,
    person: Person,
    groups: Sequence[str],
) -> Outcome:
    """Resolve the ticket's review with `group`, record it as a label, write it back.

    The label is the "override" audit row (details `group`, `previous_group`,
    `source`), which training reads as a person's choice of group.

    Raises:
        ReviewNotFoundError: the ticket has no open review item.
    """
    group = canonical_group(group, groups)
    item = resolve_review(session, ref=ref, group=group, actor=person.actor)
    ticket = find_ticket(session, ref=item.ticket_key)
    append_audit(
        session,
        event=AuditEvent.OVERRIDE,
        ticket_key=ticket.key,
        actor=person.actor,
        inputs={"name": person.name, "review_item_id": item.id},
        details={
            "group": group,
            "previous_group": item.suggested_group,
            "source": f"{SOURCE}_review",
        },
    )
    verb = "approved" if group == item.suggested_group else "chose"
    action_id = _queue_write_back(
        session,
        ticket=ticket,
        person=person,
        marker=f"opsroute:review:{item.id}",
        payload={
            "group": group,
            "reason": f"{person.name} {verb} {group} in the opsroute review queue.",
        },
    )
    return Outcome(
        f"Routed {ticket.external_id} to {group}; the choice is being written back.",
        ticket_key=ticket.key,
        state_changes={
            "group": group,
            "reviewed_by": person.name,
            "status": "resolved",
        },
        action_ids=(action_id,),
    )


def acknowledge(
    session: Session, *, ref: str, person: Person, now: datetime
) -> Outcome:
    """Acknowledge the ticket's escalation and note it in the ticket."""
    ticket = find_ticket(session, ref=ref)
    record = escalations.acknowledge(
        session, ticket_key=ticket.key, actor=person.actor, now=now
    )
    if record is None:
        return Outcome(f"{ticket.external_id} has no open escalation to acknowledge.")
    if record.acknowledged_by not in (None, person.actor):
        return Outcome(
            f"{ticket.external_id} was already acknowledged by "
            f"{record.acknowledged_by}."
        )
    action_id = _queue_write_back(
        session,
        ticket=ticket,
        person=person,
        marker=f"opsroute:ack:{record.id}",
        payload={
            "reason": f"{person.name} acknowledged the escalation in Slack.",
            # The Jira and ServiceNow connectors make a mapped person the assignee.
            "assign_to_person": True,
        },
    )
    return Outcome(
        f"Acknowledged {ticket.external_id}.",
        ticket_key=ticket.key,
        state_changes={"acknowledged_by": person.name, "status": "acknowledged"},
        action_ids=(action_id,),
    )


def escalate(
    session: Session,
    *,
    ref: str,
    person: Person,
    reason: str | None,
    now: datetime,
) -> Outcome:
    """Escalate the ticket to its next level now and note it in the ticket."""
    ticket = find_ticket(session, ref=ref)
    record = escalations.escalate_now(
        session, ticket_key=ticket.key, actor=person.actor, reason=reason, now=now
    )
    note = f"{person.name} escalated this ticket to level {record.level} in Slack"
    action_id = _queue_write_back(
        session,
        ticket=ticket,
        person=person,
        marker=f"opsroute:escalate:{record.id}:{record.level}",
        payload={"reason": note + (f": {reason}" if reason else ".")},
    )
    return Outcome(
        f"Escalated {ticket.external_id} to level {record.level} of {record.policy}.",
        ticket_key=ticket.key,
        state_changes={"escalated_by": person.name, "level": record.level},
        action_ids=(action_id,),
    )


def current_group(session: Session, *, ticket: TicketRecord) -> str | None:
    """Return the ticket's group: the last one chosen in Slack, else the router's."""
    for message in reversed(messages_of_ticket(session, ticket_key=ticket.key)):
        if message.state.get("group"):
            return str(message.state["group"])
    decision = latest_decision(session, ticket_id=ticket.id)
    if decision is not None:
        return decision.resolver_group
    return ticket.payload.get("assignment_group")


def _queue_write_back(
    session: Session,
    *,
    ticket: TicketRecord,
    person: Person,
    marker: str,
    payload: dict[str, Any],
) -> int:
    system = ticket.source_system
    note = payload["reason"]
    if person.accounts.get(system) is None:
        # The connector writes as the integration user, so the note names the person.
        note += f" (on behalf of {person.name}"
        note += f", {person.email})" if person.email else ")"
    # NOTE: Every connector writes as the integration user, because acting as
    # another user needs elevated rights or that user's own credentials. Jira and
    # ServiceNow also set the assignee when the payload requests it. Salesforce
    # only names the person in the note.
    write_back = {
        **payload,
        "note": note,
        "source": SOURCE,
        "on_behalf_of": person.on_behalf_of(system),
    }
    table = (ticket.payload.get("raw") or {}).get("sys_class_name")
    if system == "servicenow" and isinstance(table, str) and table:
        write_back["table"] = table
    (action_id,) = enqueue_actions(
        session,
        actions=[
            NewOutboxAction(
                system=system,
                instance=_instance_of(session, ticket=ticket),
                kind=ActionKind.WRITE_BACK.value,
                ticket_key=ticket.key,
                record_id=ticket.record_id,
                payload=write_back,
                marker=marker,
                decision_id=None,
            )
        ],
    )
    return action_id


def _instance_of(session: Session, *, ticket: TicketRecord) -> str:
    # NOTE: Tickets do not store the instance they came from, so the instance of
    # the ticket's last write-back is used, else the default instance.
    instance = session.execute(
        select(outbox_actions.c.instance)
        .where(
            outbox_actions.c.ticket_key == ticket.key,
            outbox_actions.c.system == ticket.source_system,
            outbox_actions.c.kind == ActionKind.WRITE_BACK.value,
        )
        .order_by(outbox_actions.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return instance or DEFAULT_INSTANCE
