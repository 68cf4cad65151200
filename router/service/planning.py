"""Plan a batch of inbox events: normalize each record, skip or route its ticket.

Planning only reads the database, so on SQLite it runs outside the write lock.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from router.intake.plugin import Assignment, Connector
from router.mapping import MappingSet
from router.routing import TicketRouter
from router.schemas import Decision, Ticket
from router.service.history import judge_event, load_history
from router.store.connector_state import observe_only_connectors
from router.store.records import InboxEvent

logger = logging.getLogger(__name__)

# Maximum length of the error text stored with a failed event.
MAX_ERROR_CHARS = 2000
# First key of the PostgreSQL advisory locks taken per ticket while routing.
TICKET_LOCK_NAMESPACE = 4096
ROUTED_BEFORE = "the ticket was routed before"


class PlanOutcome(StrEnum):
    """The step that applying a plan takes with its event."""

    ROUTE = "route"
    SKIP = "skip"
    FAIL = "fail"


@dataclass
class EventPlan:
    """One event and what to do with it: route (with its decision), skip or fail."""

    event: InboxEvent
    outcome: PlanOutcome
    ticket: Ticket | None = None
    decision: Decision | None = None
    reason: str | None = None
    # Details of a `transfer` audit event to append with a skipped event.
    transfer: dict[str, Any] | None = None
    # The connector is in observe-only mode: record the decision, write nothing.
    observe_only: bool = False

    def fail(self, reason: str) -> None:
        """Turn the plan into a failure with the reason, cut to the stored length."""
        self.outcome = PlanOutcome.FAIL
        self.reason = reason[:MAX_ERROR_CHARS]
        self.decision = None


class Planner:
    """Turn events into plans with one router, connector set and mapping set."""

    def __init__(
        self,
        *,
        router: TicketRouter,
        connectors: Mapping[tuple[str, str], Connector],
        mappings: MappingSet,
    ) -> None:
        self._router = router
        self._connectors = connectors
        self._mappings = mappings

    def plan(
        self, session: Session, events: Sequence[InboxEvent], *, decided_at: datetime
    ) -> list[EventPlan]:
        """Plan every event; one that breaks routing fails alone, not the batch.

        Raises:
            SQLAlchemyError: the database failed.
        """
        try:
            return self._plan(session, events, decided_at=decided_at, seen=set())
        except SQLAlchemyError:
            raise
        except Exception:
            logger.exception(
                "Routing a batch of %d events failed; routing each alone", len(events)
            )
        seen: set[str] = set()
        plans: list[EventPlan] = []
        for event in events:
            try:
                plans.extend(
                    self._plan(session, [event], decided_at=decided_at, seen=seen)
                )
            except SQLAlchemyError:
                raise
            except Exception as error:
                logger.exception(
                    "Routing event %s failed",
                    event.id,
                    extra=event_ids(event),
                )
                plan = EventPlan(event=event, outcome=PlanOutcome.FAIL)
                plan.fail(f"routing failed: {error}")
                plans.append(plan)
        return plans

    def _plan(
        self,
        session: Session,
        events: Sequence[InboxEvent],
        *,
        decided_at: datetime,
        seen: set[str],
    ) -> list[EventPlan]:
        plans = [self._normalize(event) for event in events]
        self._skip_routed(session, plans, seen=seen)
        routed = [plan for plan in plans if plan.outcome is PlanOutcome.ROUTE]
        if routed:
            ticket_list = [plan.ticket for plan in routed if plan.ticket is not None]
            results = self._router.route_enriched(ticket_list, now=decided_at)
            for plan, (ticket, decision) in zip(routed, results, strict=True):
                plan.ticket = ticket
                plan.decision = decision
        return plans

    def _normalize(self, event: InboxEvent) -> EventPlan:
        plan = EventPlan(event=event, outcome=PlanOutcome.ROUTE)
        connector = self._connectors.get((event.system, event.instance))
        if connector is None:
            plan.fail(
                f"no connector for system {event.system!r} instance "
                f"{event.instance!r}; configure it and deliver the event again"
            )
            return plan
        try:
            plan.ticket = connector.to_ticket(event.record, mappings=self._mappings)
        except (ValueError, KeyError, TypeError) as error:
            plan.fail(f"cannot normalize the record: {error}")
        return plan

    def _skip_routed(
        self, session: Session, plans: Sequence[EventPlan], *, seen: set[str]
    ) -> None:
        candidates = [
            plan
            for plan in plans
            if plan.outcome is PlanOutcome.ROUTE and plan.ticket is not None
        ]
        keys = {plan.ticket.key for plan in candidates if plan.ticket is not None}
        if not keys:
            return
        lock_tickets(session, keys)
        history = load_history(session, keys)
        observed = self._observe_only(session)
        for plan in candidates:
            ticket = plan.ticket
            if ticket is None:
                continue
            if ticket.key in seen:
                plan.outcome = PlanOutcome.SKIP
                plan.reason = ROUTED_BEFORE
                continue
            connector = self._connectors.get((plan.event.system, plan.event.instance))
            assignment = _assignment_of(connector, plan.event)
            if assignment is None:
                self._apply_label_rule(plan, ticket, known=ticket.key in history.known)
            else:
                verdict = judge_event(
                    ticket.key,
                    assignment,
                    history,
                    system=plan.event.system,
                    updated_at=ticket.updated_at,
                )
                if not verdict.route:
                    plan.outcome = PlanOutcome.SKIP
                    plan.reason = verdict.reason
                    plan.transfer = verdict.transfer
            if plan.outcome is PlanOutcome.ROUTE:
                seen.add(ticket.key)
                plan.observe_only = (plan.event.system, plan.event.instance) in observed

    def _apply_label_rule(
        self, plan: EventPlan, ticket: Ticket, *, known: bool
    ) -> None:
        # A connector without assignment(): a ticket is routed once, and again
        # only when it carries the system's reroute label.
        if known and not self._rerouted(ticket):
            plan.outcome = PlanOutcome.SKIP
            plan.reason = ROUTED_BEFORE

    def _observe_only(self, session: Session) -> set[tuple[str, str]]:
        observed = observe_only_connectors(session)
        for pair, connector in self._connectors.items():
            if getattr(getattr(connector, "settings", None), "observe_only", False):
                observed.add(pair)
        return observed

    def _rerouted(self, ticket: Ticket) -> bool:
        mapping = self._mappings.systems.get(ticket.source_system)
        label = mapping.reroute_label if mapping is not None else None
        return label is not None and label in ticket.labels


def lock_tickets(session: Session, keys: set[str]) -> None:
    """Take a PostgreSQL transaction lock per ticket key, in a fixed order.

    Two replicas may claim two events of one new ticket at once. The lock makes
    the second wait until the first commits, and then see the ticket as routed.
    Taking the locks in hash order keeps two batches from deadlocking.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text(
            "SELECT pg_advisory_xact_lock(:namespace, hashed) FROM "
            "(SELECT DISTINCT hashtext(key) AS hashed "
            "FROM unnest(CAST(:keys AS text[])) AS key ORDER BY 1) AS ordered"
        ),
        {"namespace": TICKET_LOCK_NAMESPACE, "keys": sorted(keys)},
    )


def event_ids(event: InboxEvent) -> dict[str, object]:
    """Return the ids of an event for a log record's `extra`."""
    return {
        "event_id": event.id,
        "system": event.system,
        "delivery_id": event.delivery_id,
        "record": event.record_key,
    }


def _assignment_of(connector: Connector | None, event: InboxEvent) -> Assignment | None:
    reader = getattr(connector, "assignment", None)
    if reader is None:
        return None
    assignment = reader(event.record)
    return assignment if isinstance(assignment, Assignment) else None
