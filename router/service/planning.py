"""Plan a batch of inbox events: normalize each record, skip or route its ticket.

Planning only reads the database, so on SQLite it runs outside the write lock.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from router.intake.plugin import Connector
from router.mapping import MappingSet
from router.routing import TicketRouter
from router.schemas import Decision, Ticket
from router.store.models import tickets
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
        # NOTE: A ticket is routed once. Later events for it (updates, including
        # the ones our own write-back causes) are skipped unless they carry the
        # system's reroute label, so a person's reassignment is never undone.
        candidates = [
            plan
            for plan in plans
            if plan.outcome is PlanOutcome.ROUTE and plan.ticket is not None
        ]
        keys = {plan.ticket.key for plan in candidates if plan.ticket is not None}
        if not keys:
            return
        lock_tickets(session, keys)
        known = set(
            session.execute(
                select(tickets.c.key).where(tickets.c.key.in_(keys))
            ).scalars()
        )
        for plan in candidates:
            ticket = plan.ticket
            if ticket is None:
                continue
            if (ticket.key in known or ticket.key in seen) and not self._rerouted(
                ticket
            ):
                plan.outcome = PlanOutcome.SKIP
                plan.reason = ROUTED_BEFORE
                continue
            seen.add(ticket.key)

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
