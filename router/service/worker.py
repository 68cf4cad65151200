"""The inbox worker: route stored events and queue their write-backs.

Each batch is one transaction: claim pending events, turn their records into
tickets, route them, store the decisions, queue one write-back per auto-routed
decision and mark the events, then commit. A crash anywhere before the commit
leaves the events pending for the next claim, so nothing is decided twice or lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from router.intake.plugin import Connector
from router.mapping import MappingSet
from router.routing import TicketRouter
from router.schemas import Decision, Ticket
from router.service.actions import write_back_action
from router.service.logs import describe_error
from router.service.metrics import ServiceMetrics
from router.service.transactions import write_transaction
from router.store.inbox import claim_inbox_events, mark_inbox_done
from router.store.models import decisions, tickets
from router.store.outbox import NewOutboxAction, enqueue_actions
from router.store.records import InboxEvent, InboxStatus
from router.store.service import save_decisions

logger = logging.getLogger(__name__)

# Longest error text stored with a failed event.
MAX_ERROR_CHARS = 2000
# Seconds the worker waits after a database error before it claims again.
ERROR_BACKOFF_SECONDS = 1.0
# First key of the PostgreSQL advisory locks taken per ticket while routing.
TICKET_LOCK_NAMESPACE = 4096


@dataclass
class BatchOutcome:
    """What one batch did, for logs and tests."""

    claimed: int = 0
    decided: int = 0
    skipped: int = 0
    failed: int = 0
    actions: int = 0
    action_ids: list[int] = field(default_factory=list)


@dataclass
class _Routable:
    event: InboxEvent
    ticket: Ticket


class InboxWorker:
    """Claim and route inbox events in batches, on a thread or by direct calls."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        connectors: Mapping[tuple[str, str], Connector],
        mappings: MappingSet,
        router: TicketRouter | None,
        worker_id: str,
        batch_size: int = 200,
        poll_seconds: float = 0.2,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._connectors = connectors
        self._mappings = mappings
        self.router = router
        self._worker_id = worker_id
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._metrics = metrics or ServiceMetrics()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start routing on a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="worker", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Finish the current batch and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        logger.info("Inbox worker %s started", self._worker_id)
        while not self._stop.is_set():
            if self.router is None:
                self._stop.wait(self._poll_seconds)
                continue
            try:
                outcome = self.process_batch()
            except SQLAlchemyError as error:
                logger.warning(
                    "Inbox batch failed, retrying: %s", describe_error(error)
                )
                self._stop.wait(ERROR_BACKOFF_SECONDS)
                continue
            if outcome.claimed < self._batch_size:
                self._stop.wait(self._poll_seconds)
        logger.info("Inbox worker %s stopped", self._worker_id)

    def process_batch(self) -> BatchOutcome:
        """Claim, route and mark one batch of pending events in one transaction.

        Raises:
            RuntimeError: no routing model is loaded yet.
            SQLAlchemyError: the database failed; the transaction is rolled back.
        """
        if self.router is None:
            raise RuntimeError("No routing model is loaded yet; wait for start-up.")
        outcome = BatchOutcome()
        with write_transaction(self._session_factory) as session:
            events = claim_inbox_events(
                session, limit=self._batch_size, worker=self._worker_id
            )
            outcome.claimed = len(events)
            if not events:
                return outcome
            try:
                with session.begin_nested():
                    self._handle(session, events, outcome)
            except SQLAlchemyError:
                raise
            except Exception:
                # Something in one record broke the batch; the savepoint undid it,
                # so each event is tried alone and only the culprit fails.
                logger.exception("Routing a batch of %d events failed", len(events))
                outcome = BatchOutcome(claimed=len(events))
                for event in events:
                    self._handle_alone(session, event, outcome)
        self._count(outcome)
        logger.info(
            "Routed batch: claimed=%d decided=%d skipped=%d failed=%d actions=%d",
            outcome.claimed,
            outcome.decided,
            outcome.skipped,
            outcome.failed,
            outcome.actions,
        )
        return outcome

    def _handle_alone(
        self, session: Session, event: InboxEvent, outcome: BatchOutcome
    ) -> None:
        try:
            with session.begin_nested():
                self._handle(session, [event], outcome)
        except SQLAlchemyError:
            raise
        except Exception as error:
            logger.exception(
                "Routing event %s failed (system=%s delivery=%s record=%s)",
                event.id,
                event.system,
                event.delivery_id,
                event.record_key,
            )
            self._fail(session, event, f"routing failed: {error}", outcome)

    def _handle(
        self, session: Session, events: Sequence[InboxEvent], outcome: BatchOutcome
    ) -> None:
        routable = self._normalize(session, events, outcome)
        routable = self._drop_decided(session, routable, outcome)
        if not routable:
            return
        router = self.router
        if router is None:
            raise RuntimeError("No routing model is loaded yet; wait for start-up.")

        decided_at = datetime.now(UTC)
        routed = router.route([item.ticket for item in routable], now=decided_at)
        pairs = [(item.ticket, d) for item, d in zip(routable, routed, strict=True)]
        save_decisions(session, items=pairs)
        decision_ids = _decision_ids(session, pairs, decided_at=decided_at)

        actions: list[NewOutboxAction] = []
        for item, decision, decision_id in zip(
            routable, routed, decision_ids, strict=True
        ):
            action = write_back_action(
                event=item.event,
                ticket=item.ticket,
                decision=decision,
                decision_id=decision_id,
            )
            if action is not None:
                actions.append(action)
            self._metrics.decision_latency.observe(
                max(0.0, (decided_at - item.event.received_at).total_seconds())
            )
            logger.debug(
                "Decided ticket=%s delivery=%s action=%s group=%s",
                decision.ticket_key,
                item.event.delivery_id,
                decision.action.value,
                decision.resolver_group,
            )
        if actions:
            outcome.action_ids.extend(enqueue_actions(session, actions=actions))
        mark_inbox_done(session, ids=[item.event.id for item in routable])
        outcome.decided += len(routable)
        outcome.actions += len(actions)
        for decision in routed:
            self._metrics.decisions.labels(action=decision.action.value).inc()

    def _normalize(
        self, session: Session, events: Sequence[InboxEvent], outcome: BatchOutcome
    ) -> list[_Routable]:
        routable: list[_Routable] = []
        for event in events:
            connector = self._connectors.get((event.system, event.instance))
            if connector is None:
                self._fail(
                    session,
                    event,
                    f"no connector for system {event.system!r} instance "
                    f"{event.instance!r}; configure it and re-deliver the event",
                    outcome,
                )
                continue
            try:
                ticket = connector.to_ticket(event.record, mappings=self._mappings)
            except (ValueError, KeyError, TypeError) as error:
                self._fail(session, event, f"cannot normalize record: {error}", outcome)
                continue
            routable.append(_Routable(event=event, ticket=ticket))
        return routable

    def _drop_decided(
        self, session: Session, routable: list[_Routable], outcome: BatchOutcome
    ) -> list[_Routable]:
        # NOTE: A ticket is routed once. Later events for it (updates, including
        # the ones our own write-back causes) are skipped, unless they carry the
        # system's reroute label, so a person's reassignment is never undone.
        keys = {item.ticket.key for item in routable}
        if not keys:
            return []
        _lock_tickets(session, keys)
        known = set(
            session.execute(select(tickets.c.key).where(tickets.c.key.in_(keys)))
            .scalars()
            .all()
        )
        kept: list[_Routable] = []
        seen: set[str] = set()
        skipped: list[int] = []
        for item in routable:
            key = item.ticket.key
            if (key in known or key in seen) and not self._wants_reroute(item.ticket):
                skipped.append(item.event.id)
                continue
            seen.add(key)
            kept.append(item)
        if skipped:
            mark_inbox_done(
                session,
                ids=skipped,
                outcome=InboxStatus.SKIPPED,
                error="the ticket was routed before",
            )
            outcome.skipped += len(skipped)
        return kept

    def _wants_reroute(self, ticket: Ticket) -> bool:
        mapping = self._mappings.systems.get(ticket.source_system)
        label = mapping.reroute_label if mapping is not None else None
        return label is not None and label in ticket.labels

    def _fail(
        self, session: Session, event: InboxEvent, error: str, outcome: BatchOutcome
    ) -> None:
        logger.error(
            "Inbox event %s failed: %s (system=%s delivery=%s record=%s)",
            event.id,
            error,
            event.system,
            event.delivery_id,
            event.record_key,
        )
        mark_inbox_done(
            session,
            ids=[event.id],
            outcome=InboxStatus.FAILED,
            error=error[:MAX_ERROR_CHARS],
        )
        outcome.failed += 1
        self._metrics.events_failed.labels(system=event.system).inc()

    def _count(self, outcome: BatchOutcome) -> None:
        if outcome.claimed:
            logger.debug("Batch outcome %s", outcome)


def _lock_tickets(session: Session, keys: set[str]) -> None:
    # Two replicas may claim two events of one new ticket at once. A transaction
    # lock per ticket key, taken in a fixed order so that no two batches deadlock,
    # makes the second wait for the first to commit and then see the ticket.
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


def _decision_ids(
    session: Session,
    pairs: Sequence[tuple[Ticket, Decision]],
    *,
    decided_at: datetime,
) -> list[int]:
    # save_decisions returns no ids. This batch's rows are the only decisions of
    # its tickets with its decision time: the ticket upsert holds those rows'
    # locks until commit, so no other transaction adds decisions for them. The ids
    # ascend in the order of the pairs.
    keys = {ticket.key for ticket, _ in pairs}
    ids = list(
        session.execute(
            select(decisions.c.id)
            .join(tickets, tickets.c.id == decisions.c.ticket_id)
            .where(tickets.c.key.in_(keys), decisions.c.decided_at == decided_at)
            .order_by(decisions.c.id)
        ).scalars()
    )
    if len(ids) != len(pairs):
        raise RuntimeError(
            f"Found {len(ids)} stored decisions for a batch of {len(pairs)}; "
            "the batch is rolled back."
        )
    return ids
