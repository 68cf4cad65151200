"""Simulate what follows each demo decision, on a simulated clock.

The bundled tickets have no history of their own, so the demo writes the follow-up
that a help desk would produce, as audit rows with their simulated time, actor
`demo:simulated-agent` and `simulated: true` in their details:

- The replayed tickets arrive evenly over `ARRIVAL_WEEKS` weeks that end
  `LAST_ARRIVAL_BEFORE_RUN` before the run, and are decided on arrival. Every
  follow-up ends within 26 hours of arrival, so all simulated times are past.
- An auto-routed ticket that the model sent to its true group is resolved by that
  group after the ticket's work time.
- An auto-routed ticket sent to a wrong group is transferred to the true group after
  the ticket's triage time, and resolved there after its work time.
- Triage takes 30 to 119 minutes and work 2 to 23 hours, fixed per ticket by a hash
  of its key, so a rerun gives the same times.
- A ticket resolved later than its priority's target (`SLA_TARGET_HOURS`) records an
  `sla_breached` at the target, caused by reassignment when it would have met the
  target without the transfer.
- Tickets sent to review get no follow-up, because they wait for a person.

A ticket that already has a `ticket_resolved` row gets nothing new, so running the
demo again does not count its transfers twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from router.schemas import Decision, DecisionAction, Ticket
from router.store.models import audit_log

ACTOR = "demo:simulated-agent"
ARRIVAL_WEEKS = 12
LAST_ARRIVAL_BEFORE_RUN = timedelta(days=2)
SLA_TARGET_HOURS = {1: 4, 2: 8, 3: 24, 4: 72, 5: 120}
DEFAULT_SLA_HOURS = 24


def arrival_times(count: int, *, run_started: datetime) -> list[datetime]:
    """Spread `count` arrivals evenly over the weeks before the run."""
    start = run_started - LAST_ARRIVAL_BEFORE_RUN - timedelta(weeks=ARRIVAL_WEEKS)
    step = timedelta(weeks=ARRIVAL_WEEKS) / max(count, 1)
    return [start + index * step for index in range(count)]


def record_follow_up(
    session: Session,
    *,
    items: Sequence[tuple[Ticket, Decision]],
    true_groups: Sequence[str],
) -> int:
    """Append the simulated follow-up of each decided ticket.

    Returns:
        The number of tickets that got a follow-up.
    """
    keys = [ticket.key for ticket, _ in items]
    resolved = set(
        session.execute(
            select(audit_log.c.ticket_key).where(
                audit_log.c.event == "ticket_resolved",
                audit_log.c.ticket_key.in_(keys),
            )
        ).scalars()
    )
    followed = 0
    rows: list[dict[str, Any]] = []
    for (ticket, decision), truth in zip(items, true_groups, strict=True):
        if decision.action is not DecisionAction.AUTO_ROUTE or ticket.key in resolved:
            continue
        rows += _follow_one(ticket=ticket, decision=decision, truth=truth)
        followed += 1
    if rows:
        # One multi-row insert, because a demo run writes tens of thousands of rows.
        session.execute(insert(audit_log), rows)
    return followed


def _follow_one(
    *, ticket: Ticket, decision: Decision, truth: str
) -> list[dict[str, Any]]:
    digest = int.from_bytes(hashlib.sha256(ticket.key.encode()).digest()[:8], "big")
    triage = timedelta(minutes=30 + digest % 90)
    work = timedelta(hours=2 + (digest >> 8) % 22)
    arrived = decision.decided_at
    transferred = decision.resolver_group != truth
    rows: list[dict[str, Any]] = []
    if transferred:
        rows.append(
            _audit(
                "transfer",
                ticket,
                arrived + triage,
                {
                    "from_group": decision.resolver_group,
                    "to_group": truth,
                    "by": "person",
                    "source": "demo",
                },
            )
        )
        resolved_at = arrived + triage + work
    else:
        resolved_at = arrived + work

    target = timedelta(
        hours=SLA_TARGET_HOURS.get(ticket.priority or 0, DEFAULT_SLA_HOURS)
    )
    if resolved_at - arrived > target:
        without_transfer = (
            resolved_at - arrived - (triage if transferred else timedelta())
        )
        rows.append(
            _audit(
                "sla_breached",
                ticket,
                arrived + target,
                {
                    "priority": ticket.priority,
                    "caused_by_reassignment": transferred
                    and without_transfer <= target,
                },
            )
        )
    rows.append(_audit("ticket_resolved", ticket, resolved_at, {"group": truth}))
    return rows


def _audit(
    event: str, ticket: Ticket, at: datetime, details: dict[str, object]
) -> dict[str, Any]:
    return {
        "at": at,
        "event": event,
        "ticket_key": ticket.key,
        "actor": ACTOR,
        "inputs": {},
        "versions": {},
        "details": {**details, "simulated": True},
    }
