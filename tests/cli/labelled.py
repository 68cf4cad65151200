"""Store tickets that people labelled, as the learning loop reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from router.schemas import (
    Decision,
    DecisionAction,
    Explanation,
    GroupExplanation,
    Ticket,
)
from router.store import append_audit, make_engine, save_decisions, session_factory

NETWORK_TITLES = (
    "vpn tunnel drops every hour",
    "vpn client cannot reach the gateway",
    "wifi gateway rejects my vpn certificate",
    "vpn gateway timeout from home office",
    "site to site vpn tunnel is down",
    "vpn certificate expired on gateway",
)


def store_reviewed_tickets(
    database_url: str,
    *,
    group: str,
    titles: tuple[str, ...],
    copies: int,
    model_version: str = "v-test",
) -> int:
    """Store tickets sent to review and resolved by a person to `group`.

    Returns:
        The number of tickets stored.
    """
    engine = make_engine(database_url)
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    stored = 0
    try:
        with session_factory(engine).begin() as session:
            for copy in range(copies):
                for index, title in enumerate(titles):
                    stored += 1
                    ticket = Ticket(
                        source_system="servicenow",
                        external_id=f"INC{stored:07d}",
                        title=f"{title} ({copy})",
                        description=f"user report {index}",
                    )
                    decided_at = start + timedelta(minutes=stored)
                    decision = Decision(
                        ticket_key=ticket.key,
                        resolver_group="Access",
                        intent="general",
                        confidence=0.4,
                        action=DecisionAction.REVIEW,
                        threshold=0.9,
                        explanation=Explanation(
                            chosen=GroupExplanation(group="Access", score=0.1)
                        ),
                        model_version=model_version,
                        policy_version="1+test",
                        decided_at=decided_at,
                    )
                    save_decisions(session, items=[(ticket, decision)])
                    append_audit(
                        session,
                        event="review_resolved",
                        ticket_key=ticket.key,
                        actor="cli:alice",
                        details={"resolved_group": group, "overridden": True},
                        at=decided_at + timedelta(hours=1),
                    )
    finally:
        engine.dispose()
    return stored
