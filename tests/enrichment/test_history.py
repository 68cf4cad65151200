"""The ticket history enricher reads the account's recent tickets from the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert

from router.enrichment.history import TicketHistoryEnricher
from router.enrichment.schemas import EnricherSpec
from router.schemas import Ticket
from router.store.db import session_factory
from router.store.models import tickets

NOW = datetime.now(UTC)


def stored(
    engine: Engine, number: int, *, account: str, priority: int, age: int
) -> None:
    ticket = Ticket(
        source_system="servicenow",
        external_id=f"INC{number:07d}",
        account=account,
        priority=priority,
    )
    seen = NOW - timedelta(days=age)
    with session_factory(engine).begin() as session:
        session.execute(
            insert(tickets),
            {
                "key": ticket.key,
                "source_system": "servicenow",
                "external_id": ticket.external_id,
                "record_id": None,
                "title": "",
                "payload": ticket.model_dump(mode="json"),
                "first_seen_at": seen,
                "last_seen_at": seen,
            },
        )


def test_history_counts_recent_account_tickets(migrated_engine: Engine) -> None:
    stored(migrated_engine, 1, account="globex", priority=1, age=2)
    stored(migrated_engine, 2, account="globex", priority=4, age=5)
    stored(migrated_engine, 3, account="globex", priority=1, age=60)
    stored(migrated_engine, 4, account="initech", priority=1, age=1)
    enricher = TicketHistoryEnricher(
        EnricherSpec(name="history", kind="ticket_history", options={"days": 30}),
        session_factory(migrated_engine),
    )
    subject = Ticket(
        source_system="servicenow", external_id="INC0000009", account="globex"
    )
    context = enricher.fetch(subject, timeout=1.0)
    assert context["history"]["recent_tickets"] == 2
    assert context["history"]["recent_incidents"] == 1
    assert context["history"]["recent_keys"] == [
        "servicenow:INC0000001",
        "servicenow:INC0000002",
    ]


def test_history_skips_ticket_without_account(migrated_engine: Engine) -> None:
    enricher = TicketHistoryEnricher(
        EnricherSpec(name="history", kind="ticket_history"),
        session_factory(migrated_engine),
    )
    subject = Ticket(source_system="jira", external_id="HELP-1")
    assert enricher.cache_key(subject) is None
