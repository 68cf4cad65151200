"""An enricher that counts the account's recent tickets in the store.

It adds `history.recent_tickets` (other tickets of the account seen in the last
`days` days, 30 by default) and `history.recent_incidents` (those of them whose
priority is 1 or 2), and `history.recent_keys` (up to five of their keys).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from router.enrichment.base import EnrichmentError
from router.enrichment.schemas import EnricherSpec
from router.schemas import Ticket
from router.store.models import tickets

# Rows counted per lookup at most; the newest come first.
MAX_ROWS = 2000
INCIDENT_PRIORITIES = frozenset({1, 2})


class TicketHistoryEnricher:
    """Count the recent tickets of the ticket's account."""

    fields = (
        "history.recent_tickets",
        "history.recent_incidents",
        "history.recent_keys",
    )

    def __init__(self, spec: EnricherSpec, session_factory: sessionmaker[Session]):
        self.name = spec.name
        self.days = float(spec.options.get("days", 30))
        self._session_factory = session_factory

    def cache_key(self, ticket: Ticket) -> str | None:
        """Return the account, or None for a ticket without one."""
        return f"{ticket.source_system}:{ticket.account}" if ticket.account else None

    def fetch(self, ticket: Ticket, *, timeout: float) -> dict[str, Any]:
        """Count the account's recent tickets, other than this one."""
        since = datetime.now(UTC) - timedelta(days=self.days)
        payload = tickets.c.payload
        query = (
            select(tickets.c.key, payload["priority"].as_integer().label("priority"))
            .where(
                tickets.c.last_seen_at >= since,
                tickets.c.source_system == ticket.source_system,
                payload["account"].as_string() == ticket.account,
                tickets.c.key != ticket.key,
            )
            .order_by(tickets.c.last_seen_at.desc())
            .limit(MAX_ROWS)
        )
        try:
            with self._session_factory() as session:
                rows = session.execute(query).all()
        except SQLAlchemyError as error:
            raise EnrichmentError(
                f"{self.name}: store query failed ({type(error).__name__})",
                retryable=True,
            ) from None
        incidents = [row for row in rows if row.priority in INCIDENT_PRIORITIES]
        return {
            "history": {
                "recent_tickets": len(rows),
                "recent_incidents": len(incidents),
                "recent_keys": [row.key for row in rows[:5]],
            }
        }


def create_enricher(
    spec: EnricherSpec, *, session_factory: sessionmaker[Session] | None = None
) -> TicketHistoryEnricher:
    """Build the history enricher; it needs the store.

    Raises:
        ValueError: no session factory was given, as in `opsroute policy test`.
    """
    if session_factory is None:
        raise ValueError(
            f"enricher {spec.name!r} reads the store, which this command does not open"
        )
    return TicketHistoryEnricher(spec, session_factory)
