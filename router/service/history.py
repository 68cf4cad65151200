"""Decide whether an event of a known ticket routes it again, from its history.

An event routes its ticket when the ticket is new to opsroute and unassigned (or
in the triage group), when the record is unassigned, or when an agent sent it
back (the triage group or the reroute label). It starts nothing when it echoes
our own write-back, when a write-back is still on its way, or when a person set
the group: that change is recorded once as a `transfer` and left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from router.intake.plugin import Assignment
from router.store.models import audit_log, decisions, outbox_actions, tickets
from router.store.records import ActionKind, ActionStatus, AuditEvent

ECHO = "the change is our own write-back"
WRITE_BACK_PENDING = "a write-back of the ticket is still pending"
ASSIGNED_BY_PERSON = "a person assigned the ticket; recorded as a transfer"
ASSIGNED_BEFORE_OPSROUTE = "the ticket was assigned before opsroute saw it"
TRANSFER_RECORDED = "a person assigned the ticket; the transfer is recorded"
STALE = "the change is older than the ticket's last decision"
# ServiceNow and Salesforce give change times in whole seconds, so a change in
# the same second as the decision is not taken as older.
STALE_TOLERANCE = timedelta(seconds=1)


@dataclass(frozen=True)
class WriteBackState:
    """The latest write-back of a ticket: its state and the group it wrote."""

    status: str
    group: str | None
    # Names and ids the written group goes by in the system (from the result).
    written: frozenset[str]


@dataclass
class TicketHistory:
    """The stored history of a batch's tickets."""

    known: set[str] = field(default_factory=set)
    write_backs: dict[str, WriteBackState] = field(default_factory=dict)
    # The `to_group` of each ticket's latest transfer.
    transferred_to: dict[str, str | None] = field(default_factory=dict)
    # When each ticket was last decided.
    last_decided: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """Whether an event routes its ticket, why not, and a transfer to record."""

    route: bool
    reason: str | None = None
    transfer: dict[str, Any] | None = None


def load_history(session: Session, keys: Iterable[str]) -> TicketHistory:
    """Read the routed tickets, latest write-backs and transfers of `keys`."""
    wanted = sorted(set(keys))
    history = TicketHistory()
    history.known = set(
        session.execute(
            select(tickets.c.key).where(tickets.c.key.in_(wanted))
        ).scalars()
    )
    if not history.known:
        return history
    known = sorted(history.known)
    decided = session.execute(
        select(tickets.c.key, func.max(decisions.c.decided_at))
        .join(decisions, decisions.c.ticket_id == tickets.c.id)
        .where(tickets.c.key.in_(known))
        .group_by(tickets.c.key)
    ).all()
    for ticket_key, decided_at in decided:
        if decided_at is not None:
            history.last_decided[ticket_key] = _aware(decided_at)
    rows = session.execute(
        select(
            outbox_actions.c.ticket_key,
            outbox_actions.c.status,
            outbox_actions.c.payload,
            outbox_actions.c.result,
        )
        .where(
            outbox_actions.c.ticket_key.in_(known),
            outbox_actions.c.kind == ActionKind.WRITE_BACK.value,
        )
        .order_by(outbox_actions.c.id)
    ).all()
    for row in rows:
        history.write_backs[row.ticket_key] = _write_back_state(row)
    transfers = session.execute(
        select(audit_log.c.ticket_key, audit_log.c.details)
        .where(
            audit_log.c.ticket_key.in_(known),
            audit_log.c.event == AuditEvent.TRANSFER.value,
        )
        .order_by(audit_log.c.id)
    ).all()
    for ticket_key, details in transfers:
        history.transferred_to[ticket_key] = (details or {}).get("to_group")
    return history


def _aware(moment: datetime) -> datetime:
    # SQLite returns the aggregate as naive text-parsed UTC.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _write_back_state(row: Any) -> WriteBackState:
    payload = row.payload or {}
    result = row.result or {}
    group = payload.get("target") or payload.get("group")
    written = {str(item) for item in result.get("written_group") or [] if item}
    for name in (payload.get("target"), payload.get("group"), result.get("group")):
        if name:
            written.add(str(name))
    return WriteBackState(
        status=str(row.status),
        group=str(group) if group else None,
        written=frozenset(written),
    )


def judge_event(
    key: str,
    assignment: Assignment,
    history: TicketHistory,
    *,
    system: str,
    updated_at: datetime | None = None,
) -> Verdict:
    """Return whether an event with this assignment routes ticket `key`.

    `updated_at` is the record's change time; a change older than the ticket's
    last decision is a late delivery and starts nothing.
    """
    if key not in history.known:
        if assignment.identifiers and not assignment.sent_back:
            return Verdict(route=False, reason=ASSIGNED_BEFORE_OPSROUTE)
        return Verdict(route=True)

    last = history.write_backs.get(key)
    if last is not None and last.status in (
        ActionStatus.PENDING.value,
        ActionStatus.IN_FLIGHT.value,
    ):
        return Verdict(route=False, reason=WRITE_BACK_PENDING)
    decided = history.last_decided.get(key)
    if (
        updated_at is not None
        and decided is not None
        and updated_at < decided - STALE_TOLERANCE
    ):
        # NOTE: This compares the vendor's clock with ours, so a vendor clock
        # that runs behind by more than the time between a decision and the
        # next change makes that change look late.
        return Verdict(route=False, reason=STALE)
    if assignment.sent_back or not assignment.identifiers:
        return Verdict(route=True)
    if assignment.by_integration:
        return Verdict(route=False, reason=ECHO)
    if last is not None and assignment.identifiers & last.written:
        return Verdict(route=False, reason=ECHO)

    if key in history.transferred_to and history.transferred_to[key] == (
        assignment.group
    ):
        return Verdict(route=False, reason=TRANSFER_RECORDED)
    previous = history.transferred_to.get(key)
    if previous is None and last is not None:
        previous = last.group
    transfer = {
        "from_group": previous,
        "to_group": assignment.group,
        "by": "person",
        "source": system,
        "changed_by": assignment.changed_by,
    }
    return Verdict(route=False, reason=ASSIGNED_BY_PERSON, transfer=transfer)
