"""Apply planned events: store decisions, queue write-backs, mark the events."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from router.analytics.learning import service_hooks
from router.escalation.updates import observe_ticket_updates
from router.schemas import Decision, Ticket
from router.service.actions import decision_actions, record_decision_effects
from router.service.message_updates import queue_message_updates
from router.service.planning import ROUTED_BEFORE, EventPlan, PlanOutcome, event_ids
from router.store.inbox import mark_inbox_done
from router.store.outbox import NewOutboxAction, enqueue_actions
from router.store.records import AuditEvent, InboxStatus
from router.store.service import append_audit, save_decisions

logger = logging.getLogger(__name__)


class ConcurrentClaimError(RuntimeError):
    """Some planned events were no longer pending, so the batch is rolled back."""


@dataclass
class AppliedBatch:
    """Counts of the events one apply stored, and the ids of its actions."""

    decided: int = 0
    skipped: int = 0
    failed: int = 0
    action_ids: list[int] = field(default_factory=list)


def apply_plans(session: Session, plans: Sequence[EventPlan]) -> AppliedBatch:
    """Store a batch of plans in the session's transaction.

    A plan whose apply raises something other than a database error fails alone:
    the batch is undone to a savepoint and each plan is applied on its own, the
    culprit being marked failed. A failed plan's `outcome` becomes FAIL.

    Raises:
        SQLAlchemyError: the database failed; the caller's transaction must roll
            back.
        ConcurrentClaimError: another worker finished some of these events.
    """
    try:
        with session.begin_nested():
            return _apply(session, plans)
    except (SQLAlchemyError, ConcurrentClaimError):
        raise
    except Exception:
        logger.exception("Storing a batch of %d events failed", len(plans))
    applied = AppliedBatch()
    for plan in plans:
        try:
            with session.begin_nested():
                one = _apply(session, [plan])
        except (SQLAlchemyError, ConcurrentClaimError):
            raise
        except Exception as error:
            logger.exception(
                "Storing event %s failed", plan.event.id, extra=event_ids(plan.event)
            )
            plan.fail(f"routing failed: {error}")
            one = _apply(session, [plan])
        applied.decided += one.decided
        applied.skipped += one.skipped
        applied.failed += one.failed
        applied.action_ids.extend(one.action_ids)
    return applied


def _apply(session: Session, plans: Sequence[EventPlan]) -> AppliedBatch:
    applied = AppliedBatch()
    changed = 0
    for plan in plans:
        if plan.outcome is PlanOutcome.FAIL:
            logger.error(
                "Inbox event %s failed: %s",
                plan.event.id,
                plan.reason,
                extra=event_ids(plan.event),
            )
            changed += mark_inbox_done(
                session,
                ids=[plan.event.id],
                outcome=InboxStatus.FAILED,
                error=plan.reason or "failed",
            )
            applied.failed += 1
    skipped = [plan for plan in plans if plan.outcome is PlanOutcome.SKIP]
    observe_ticket_updates(
        session,
        tickets=[plan.ticket for plan in skipped if plan.ticket is not None],
        now=utc_now(),
    )
    for reason in sorted({plan.reason or ROUTED_BEFORE for plan in skipped}):
        changed += mark_inbox_done(
            session,
            ids=[
                plan.event.id
                for plan in skipped
                if (plan.reason or ROUTED_BEFORE) == reason
            ],
            outcome=InboxStatus.SKIPPED,
            error=reason,
        )
    applied.skipped = len(skipped)
    record_transfers(session, skipped)

    routed = [plan for plan in plans if plan.outcome is PlanOutcome.ROUTE]
    pairs = [_pair(plan) for plan in routed]
    if pairs:
        pairs = service_hooks.guard(session, pairs)
        decision_ids = save_decisions(session, items=pairs)
        service_hooks.record_shadow(session, pairs, decision_ids)
        record_decision_effects(
            session,
            items=[
                (ticket, decision, decision_id)
                for (ticket, decision), decision_id in zip(
                    pairs, decision_ids, strict=True
                )
            ],
            observe_only=frozenset(
                ticket.key
                for plan, (ticket, _) in zip(routed, pairs, strict=True)
                if plan.observe_only
            ),
        )
        actions: list[NewOutboxAction] = []
        for plan, (ticket, decision), decision_id in zip(
            routed, pairs, decision_ids, strict=True
        ):
            if plan.observe_only:
                # Tasks and notifications are left out too, because observe-only
                # writes nothing to the source system and pages no on-call target.
                logger.info(
                    "Observe-only: decision %s for %s queues no actions",
                    decision_id,
                    ticket.key,
                )
                continue
            actions.extend(
                decision_actions(
                    event=plan.event,
                    ticket=ticket,
                    decision=decision,
                    decision_id=decision_id,
                )
            )
        if actions:
            applied.action_ids = enqueue_actions(session, actions=actions)
        changed += mark_inbox_done(session, ids=[plan.event.id for plan in routed])
        applied.decided = len(routed)
    # Queue updates of the Slack messages of the tickets this batch changed.
    applied.action_ids.extend(queue_message_updates(session, plans))

    if changed != len(plans):
        raise ConcurrentClaimError(
            f"{len(plans) - changed} of {len(plans)} claimed inbox events were no "
            "longer pending; another worker uses this database. Run one worker per "
            "SQLite file, or share work through PostgreSQL."
        )
    return applied


def record_transfers(session: Session, plans: Sequence[EventPlan]) -> None:
    """Append a `transfer` audit event for each plan that found a person's change."""
    for plan in plans:
        if plan.transfer is None or plan.ticket is None:
            continue
        by = plan.transfer.get("changed_by") or "person"
        append_audit(
            session,
            event=AuditEvent.TRANSFER,
            ticket_key=plan.ticket.key,
            actor=f"{plan.event.system}:{by}",
            inputs={"inbox_event_id": plan.event.id},
            details={
                key: value
                for key, value in plan.transfer.items()
                if key != "changed_by"
            },
        )
        logger.info(
            "Ticket %s moved from %s to %s by a person; opsroute leaves it there",
            plan.ticket.key,
            plan.transfer.get("from_group"),
            plan.transfer.get("to_group"),
        )


def _pair(plan: EventPlan) -> tuple[Ticket, Decision]:
    if plan.ticket is None or plan.decision is None:
        raise RuntimeError(f"Event {plan.event.id} is planned for routing undecided.")
    return plan.ticket, plan.decision


def utc_now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)
