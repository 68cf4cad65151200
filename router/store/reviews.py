"""Review items: tickets the router left for a person to route.

Items are opened by `save_decisions`; this module lists and resolves them. Like the
rest of the store, it never commits.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from router.store.errors import ReviewNotFoundError
from router.store.models import decisions, review_items, tickets
from router.store.records import AuditEvent, ReviewItemRecord
from router.store.service import append_audit, find_ticket

logger = logging.getLogger(__name__)


def list_open_reviews(session: Session, *, limit: int = 50) -> list[ReviewItemRecord]:
    """Return up to `limit` open review items, oldest first."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")
    rows = session.execute(
        _review_query()
        .where(review_items.c.status == "open")
        .order_by(review_items.c.created_at, review_items.c.id)
        .limit(limit)
    ).all()
    return [ReviewItemRecord(**row._mapping) for row in rows]


def count_open_reviews(session: Session) -> int:
    """Return how many review items are open."""
    query = select(func.count()).select_from(review_items)
    return int(
        session.execute(query.where(review_items.c.status == "open")).scalar_one()
    )


def resolve_review(
    session: Session, *, ref: str, group: str, actor: str
) -> ReviewItemRecord:
    """Close the ticket's open review item with the group a person chose.

    Records the group, the actor and the time on the item and appends a
    "review_resolved" audit row.

    Raises:
        TicketNotFoundError, AmbiguousTicketError: `ref` matches no single ticket.
        ReviewNotFoundError: the ticket has no open review item.
    """
    group = group.strip()
    if not group:
        raise ValueError("Resolver group is empty; pass the group to assign.")
    ticket = find_ticket(session, ref=ref)

    row = session.execute(
        _review_query()
        .where(review_items.c.ticket_id == ticket.id, review_items.c.status == "open")
        .with_for_update(of=review_items)
    ).first()
    if row is None:
        raise ReviewNotFoundError(ticket.key)
    item = ReviewItemRecord(**row._mapping)

    now = datetime.now(UTC)
    updated = session.execute(
        update(review_items)
        .where(review_items.c.id == item.id, review_items.c.status == "open")
        .values(
            status="resolved", resolved_group=group, resolved_by=actor, resolved_at=now
        )
        .returning(review_items.c.id)
    ).first()
    # A concurrent resolve on a backend without row locks can win the race.
    if updated is None:
        raise ReviewNotFoundError(ticket.key)

    append_audit(
        session,
        event=AuditEvent.REVIEW_RESOLVED,
        ticket_key=ticket.key,
        actor=actor,
        inputs={"candidates": item.candidates, "suggested_group": item.suggested_group},
        versions=_decision_versions(session, decision_id=item.decision_id),
        details={
            "review_item_id": item.id,
            "decision_id": item.decision_id,
            "resolved_group": group,
            "overridden": group != item.suggested_group,
        },
    )
    logger.info("Resolved review of %s to group %s by %s", ticket.key, group, actor)
    row = session.execute(_review_query(item_id=item.id)).one()
    return ReviewItemRecord(**row._mapping)


def _decision_versions(session: Session, *, decision_id: int) -> dict[str, str]:
    row = session.execute(
        select(decisions.c.model_version, decisions.c.policy_version).where(
            decisions.c.id == decision_id
        )
    ).one()
    return {"model": row.model_version, "policy": row.policy_version}


def _review_query(*, item_id: int | None = None) -> Select[Any]:
    query = (
        select(
            review_items,
            tickets.c.key.label("ticket_key"),
            tickets.c.title,
            decisions.c.resolver_group.label("suggested_group"),
            decisions.c.confidence,
        )
        .join(tickets, tickets.c.id == review_items.c.ticket_id)
        .join(decisions, decisions.c.id == review_items.c.decision_id)
    )
    if item_id is not None:
        query = query.where(review_items.c.id == item_id)
    return query
