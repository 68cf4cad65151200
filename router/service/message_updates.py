"""Info notifications that update a ticket's Slack messages after an ITSM change.

When an update event arrives for a ticket that has a Slack message (table
`slack_messages`), the worker queues one `info` notification to the `slack`
notifier with the ticket's new group and state, so the message changes in place.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from router.schemas import DecisionAction
from router.service.history import STALE
from router.service.planning import EventPlan, PlanOutcome
from router.store.models import slack_messages
from router.store.outbox import NewOutboxAction, enqueue_actions
from router.store.records import ActionKind

# Canonical ticket states (the `state` value maps of the mapping files) in which a
# Slack message shows the ticket as resolved, without its buttons.
RESOLVED_STATES = frozenset({"Resolved", "Closed", "Canceled"})


class SlackTokenSetting(BaseSettings):
    """The Slack bot token, read from the same variable and file as the Slack app."""

    model_config = SettingsConfigDict(
        env_prefix="OPSROUTE_SLACK_",
        env_file=os.environ.get("OPSROUTE_SETTINGS_FILE"),
        extra="ignore",
    )

    bot_token: SecretStr | None = None


@dataclass(frozen=True)
class TicketChange:
    """The group, state and author an inbox event gives a ticket's Slack messages."""

    group: str | None
    state: str | None
    changed_by: str


def queue_message_updates(
    session: Session, plans: Sequence[EventPlan], *, enabled: bool | None = None
) -> list[int]:
    """Queue an `info` notification for each ticket whose Slack messages are stale.

    A planned event changes what a ticket's message shows when a person moved the
    ticket to another group in its own system, when opsroute routed it again, or
    when its state changed. Nothing is queued for a ticket without a message, and
    nothing at all unless `enabled` (by default: OPSROUTE_SLACK_BOT_TOKEN is set).

    Returns:
        The ids of the queued actions.
    """
    changes: dict[str, tuple[EventPlan, TicketChange]] = {}
    for plan in plans:
        change = ticket_change(plan)
        if change is not None and plan.ticket is not None:
            # A later event of the same ticket in the batch is the newer state.
            changes[plan.ticket.key] = (plan, change)
    if not changes:
        return []
    if enabled is None:
        enabled = SlackTokenSetting().bot_token is not None
    if not enabled:
        return []

    rows = session.execute(
        select(
            slack_messages.c.ticket_key,
            slack_messages.c.channel,
            slack_messages.c.payload,
            slack_messages.c.state,
        )
        .where(slack_messages.c.ticket_key.in_(sorted(changes)))
        .order_by(slack_messages.c.id)
    ).all()
    shown: dict[str, list[Any]] = {}
    for row in rows:
        shown.setdefault(row.ticket_key, []).append(row)

    actions = []
    for ticket_key, (plan, change) in changes.items():
        messages = shown.get(ticket_key)
        if messages and any(_is_stale(message, change) for message in messages):
            actions.append(
                info_notification_action(plan, change, channel=messages[0].channel)
            )
    return enqueue_actions(session, actions=actions)


def ticket_change(plan: EventPlan) -> TicketChange | None:
    """Return the group and state an event gives its ticket.

    Returns None for a failed event and for a late delivery.
    """
    ticket = plan.ticket
    if ticket is None or plan.outcome is PlanOutcome.FAIL:
        return None
    if plan.reason == STALE:
        # A late delivery carries an older state than the message may show.
        return None
    system = plan.event.system
    group = None
    changed_by = system
    decision = plan.decision
    if (
        plan.outcome is PlanOutcome.ROUTE
        and decision is not None
        and decision.action is DecisionAction.AUTO_ROUTE
        and not plan.observe_only
    ):
        group = decision.resolver_group
        changed_by = "opsroute"
    elif plan.transfer is not None and plan.transfer.get("to_group"):
        group = str(plan.transfer["to_group"])
        person = plan.transfer.get("changed_by")
        changed_by = f"{system}:{person}" if person else system
    return TicketChange(group=group, state=ticket.state, changed_by=changed_by)


def _is_stale(message: Any, change: TicketChange) -> bool:
    state = message.state or {}
    shown_group = state.get("group") or (message.payload or {}).get("resolver_group")
    if change.group is not None and change.group != shown_group:
        return True
    if change.state is None:
        return False
    shown_state = state.get("ticket_state")
    if shown_state is None:
        # A message is posted without the ticket's state, so only a resolution
        # is worth an update until a state is shown.
        return change.state in RESOLVED_STATES
    return bool(change.state != shown_state)


def info_notification_action(
    plan: EventPlan, change: TicketChange, *, channel: str
) -> NewOutboxAction:
    """Build the `info` notification that updates a ticket's Slack messages in place.

    The payload follows the `notification` contract, plus `change`: the new
    `group` (or null), `state`, whether the state is `resolved`, and who made
    the change (`changed_by`: `opsroute`, or `<system>[:<user>]`).
    """
    ticket = plan.ticket
    if ticket is None:
        raise ValueError(f"Event {plan.event.id} has no ticket to notify about.")
    what = f"moved to {change.group}" if change.group else f"now {change.state}"
    payload: dict[str, object] = {
        "notification_type": "info",
        "target": f"channel:{channel}",
        "reason": f"{ticket.external_id} {what} ({change.changed_by}).",
        "ticket_key": ticket.key,
        "title": ticket.title,
        "priority": ticket.priority,
        "resolver_group": change.group,
        "confidence": None,
        "candidates": [],
        "context": {},
        "escalation": None,
        "link": None,
        "change": {
            "group": change.group,
            "state": change.state,
            "resolved": change.state in RESOLVED_STATES,
            "changed_by": change.changed_by,
        },
    }
    return NewOutboxAction(
        system="slack",
        instance="default",
        kind=ActionKind.NOTIFICATION.value,
        ticket_key=ticket.key,
        record_id=ticket.record_id,
        payload=payload,
        # One update per inbox event, so a redelivered event queues nothing new.
        marker=f"opsroute:notify:event-{plan.event.id}:info",
        decision_id=None,
    )
