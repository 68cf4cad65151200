"""Replay stored tickets under the policies on disk and list changed decisions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from router.mapping import MappingSet
from router.policy.facts import ModelOutput
from router.policy.preview import preview_ticket
from router.schemas import Ticket
from router.store.models import decisions, policy_outcomes, tickets

# Fields compared between the stored decision and the replayed one.
COMPARED = ("route_to", "action", "rules_fired", "tasks", "escalation")


@dataclass(frozen=True)
class DecisionChange:
    """One ticket whose decision would change, with the old and new values."""

    ticket_key: str
    decided_at: datetime
    changes: dict[str, tuple[Any, Any]]

    def as_json(self) -> dict[str, Any]:
        """Return the change as a JSON object."""
        return {
            "ticket_key": self.ticket_key,
            "decided_at": self.decided_at.isoformat(),
            "changes": {
                name: {"stored": old, "replayed": new}
                for name, (old, new) in self.changes.items()
            },
        }


@dataclass
class DiffSummary:
    """How many tickets were replayed, and which decisions would change."""

    replayed: int
    changed: list[DecisionChange]


def diff_decisions(
    session: Session, *, mappings: MappingSet, since: datetime, limit: int
) -> DiffSummary:
    """Replay each ticket's latest decision since `since` under `mappings`.

    The stored context is reused, so no enricher is called, and the model's
    stored top candidate and confidence stand in for the classifier. So the
    diff shows what the policies and thresholds on disk change, not the model.
    """
    replayed = 0
    changed: list[DecisionChange] = []
    for ticket, stored in _latest_decisions(session, since=since, limit=limit):
        replayed += 1
        candidates = stored["candidates"] or []
        model = (
            ModelOutput(
                group=str(candidates[0]["group"]), confidence=stored["confidence"]
            )
            if candidates
            else None
        )
        preview = preview_ticket(
            ticket, mappings=mappings, now=stored["decided_at"], model=model
        ).as_json()
        replay = {
            "route_to": preview["route_to"],
            "action": preview["action"],
            "rules_fired": preview["rules_fired"],
            "tasks": sorted(task["type"] for task in preview["tasks"]),
            "escalation": preview["escalation"],
        }
        differences = {
            name: (stored[name], replay[name])
            for name in COMPARED
            if stored[name] != replay[name]
        }
        if differences:
            changed.append(
                DecisionChange(
                    ticket_key=ticket.key,
                    decided_at=stored["decided_at"],
                    changes=differences,
                )
            )
    return DiffSummary(replayed=replayed, changed=changed)


def _latest_decisions(
    session: Session, *, since: datetime, limit: int
) -> Iterator[tuple[Ticket, dict[str, Any]]]:
    query = (
        select(
            tickets.c.key,
            tickets.c.payload,
            decisions.c.id,
            decisions.c.resolver_group,
            decisions.c.action,
            decisions.c.confidence,
            decisions.c.candidates,
            decisions.c.decided_at,
            policy_outcomes.c.rules_fired,
            policy_outcomes.c.tasks,
            policy_outcomes.c.escalation,
        )
        .join(decisions, decisions.c.ticket_id == tickets.c.id)
        .outerjoin(policy_outcomes, policy_outcomes.c.decision_id == decisions.c.id)
        .where(decisions.c.decided_at >= since)
        .order_by(decisions.c.decided_at.desc(), decisions.c.id.desc())
    )
    seen: set[str] = set()
    for row in session.execute(query):
        if row.key in seen:
            continue
        seen.add(row.key)
        if len(seen) > limit:
            return
        stored = {
            "route_to": row.resolver_group,
            "action": row.action,
            "confidence": row.confidence,
            "candidates": row.candidates,
            "decided_at": row.decided_at,
            "rules_fired": list(row.rules_fired or []),
            "tasks": sorted(task["type"] for task in row.tasks or []),
            "escalation": row.escalation,
        }
        yield Ticket.model_validate(row.payload), stored
