"""Routing metrics computed from ticket histories.

Definitions, per ticket:

- The first assignment is the earliest of: the router's auto-route, a reviewer's
  choice (`review_resolved`), a person's `override`, a `transfer`. Only transfers
  after the first assignment count as transfers.
- The owner is the group of the last `ticket_resolved` event. Tickets without one
  count for neither first-touch accuracy nor time to owner.
- Time to owner runs from the first decision to the assignment that handed the
  ticket to its owner for the last time.
- An escalation runs from `escalation_started` to the next `escalation_resolved` of
  the same ticket and policy. It is false when it was downgraded, or resolved with a
  reason in `NOT_NEEDED_REASONS`.

Each figure is None where no ticket could be measured for it.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from router.analytics.history import TicketHistory

AUTO_ROUTE = "auto_route"
REVIEW_ACTIONS = frozenset({"review", "forced_review"})
# Reasons of an `escalation_resolved` event that mark the escalation as not needed.
NOT_NEEDED_REASONS = frozenset({"not_needed", "not needed", "false_alarm"})


@dataclass
class Escalation:
    """One escalation of a ticket under one policy."""

    started_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    false: bool = False


@dataclass
class TicketFacts:
    """The facts one ticket's history records, ready to aggregate."""

    key: str
    source_system: str
    intent: str
    week: str
    decided_group: str
    confidence: float
    in_review: bool
    auto_routed: bool
    first_group: str | None
    owner: str | None
    transfers: int
    seconds_to_owner: float | None
    sla_breaches: int
    sla_breaches_from_reassignment: int
    reviews: int
    reviews_agreeing: int
    escalations: list[Escalation] = field(default_factory=list)

    @property
    def group(self) -> str:
        """The resolving group when known, else the group the router chose."""
        return self.owner or self.decided_group


def ticket_facts(history: TicketHistory) -> TicketFacts:
    """Derive the facts of one ticket from its first decision and its events."""
    first = history.first
    arrival = first.decided_at
    assignments: list[tuple[datetime, str]] = []
    if first.action == AUTO_ROUTE:
        assignments.append((arrival, first.resolver_group))

    owner: str | None = None
    transfers = breaches = breaches_moved = reviews = agreeing = 0
    escalations: dict[str, Escalation] = {}
    closed: list[Escalation] = []
    for event in history.events:
        details = event.details
        if event.event == "override" and details.get("group"):
            assignments.append((event.at, str(details["group"])))
        elif event.event == "review_resolved" and details.get("resolved_group"):
            assignments.append((event.at, str(details["resolved_group"])))
            reviews += 1
            agreeing += not details.get("overridden", False)
        elif event.event == "transfer" and details.get("to_group"):
            # A group set on a ticket that had none yet is its first assignment, not
            # a transfer away from a wrong group.
            transfers += bool(assignments)
            assignments.append((event.at, str(details["to_group"])))
        elif event.event == "ticket_resolved" and details.get("group"):
            owner = str(details["group"])
        elif event.event == "sla_breached":
            breaches += 1
            breaches_moved += bool(details.get("caused_by_reassignment"))
        elif event.event.startswith("escalation_"):
            _track_escalation(event.event, event.at, details, escalations, closed)

    assignments.sort(key=lambda item: item[0])
    return TicketFacts(
        key=history.key,
        source_system=history.source_system,
        intent=first.intent,
        week=_iso_week(arrival),
        decided_group=first.resolver_group,
        confidence=first.confidence,
        in_review=first.action in REVIEW_ACTIONS,
        auto_routed=first.action == AUTO_ROUTE,
        first_group=assignments[0][1] if assignments else None,
        owner=owner,
        transfers=transfers,
        seconds_to_owner=_seconds_to_owner(arrival, assignments, owner),
        sla_breaches=breaches,
        sla_breaches_from_reassignment=breaches_moved,
        reviews=reviews,
        reviews_agreeing=agreeing,
        escalations=closed + list(escalations.values()),
    )


def _track_escalation(
    name: str,
    at: datetime,
    details: dict[str, Any],
    open_by_policy: dict[str, Escalation],
    closed: list[Escalation],
) -> None:
    policy = str(details.get("policy") or "")
    current = open_by_policy.get(policy)
    if name == "escalation_started":
        if current is not None:
            closed.append(open_by_policy.pop(policy))
        open_by_policy[policy] = Escalation(started_at=at)
        return
    if current is None:
        return
    if name == "escalation_acknowledged" and current.acknowledged_at is None:
        current.acknowledged_at = at
    elif name == "escalation_downgraded":
        current.false = True
    elif name == "escalation_resolved":
        current.resolved_at = at
        reason = str(details.get("reason") or "").strip().lower()
        current.false = current.false or reason in NOT_NEEDED_REASONS
        closed.append(open_by_policy.pop(policy))


def _seconds_to_owner(
    arrival: datetime, assignments: Sequence[tuple[datetime, str]], owner: str | None
) -> float | None:
    if owner is None:
        return None
    handed_over: datetime | None = None
    previous: str | None = None
    for at, group in assignments:
        if group == owner and previous != owner:
            handed_over = at
        previous = group
    if handed_over is None:
        return None
    return max(0.0, (handed_over - arrival).total_seconds())


def _iso_week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def summarize(facts: Sequence[TicketFacts]) -> dict[str, Any]:
    """Aggregate ticket facts into the report's figures, with their counts."""
    judged = [f for f in facts if f.first_group is not None and f.owner is not None]
    assigned = [f for f in facts if f.first_group is not None]
    owner_times = [f.seconds_to_owner for f in facts if f.seconds_to_owner is not None]

    breaches = sum(f.sla_breaches for f in facts)
    breaches_moved = sum(f.sla_breaches_from_reassignment for f in facts)

    escalations = [e for f in facts for e in f.escalations]
    cycles = [
        (e.resolved_at - e.started_at).total_seconds()
        for e in escalations
        if e.resolved_at is not None
    ]
    acknowledged = [
        (e.acknowledged_at - e.started_at).total_seconds()
        for e in escalations
        if e.acknowledged_at is not None
    ]
    ack_to_resolved = [
        (e.resolved_at - e.acknowledged_at).total_seconds()
        for e in escalations
        if e.resolved_at is not None and e.acknowledged_at is not None
    ]
    reviews = sum(f.reviews for f in facts)
    correct = sum(f.first_group == f.owner for f in judged)

    return {
        "tickets": len(facts),
        "first_touch_accuracy": _ratio(correct, len(judged)),
        "transfers_per_ticket": _ratio(
            sum(f.transfers for f in assigned), len(assigned)
        ),
        "time_to_owner_p50_seconds": _median(owner_times),
        "time_to_owner_p90_seconds": _quantile(owner_times, 0.9),
        "sla_breaches_from_reassignment": _ratio(breaches_moved, breaches),
        "escalation_cycle_p50_seconds": _median(cycles),
        "escalation_acknowledge_p50_seconds": _median(acknowledged),
        "escalation_resolve_p50_seconds": _median(ack_to_resolved),
        "false_escalation_rate": _ratio(
            sum(e.false for e in escalations), len(escalations)
        ),
        "review_share": _ratio(sum(f.in_review for f in facts), len(facts)),
        "reviewer_agreement": _ratio(sum(f.reviews_agreeing for f in facts), reviews),
        "counts": {
            "tickets_assigned": len(assigned),
            "tickets_resolved": sum(f.owner is not None for f in facts),
            "first_touch_judged": len(judged),
            "transfers": sum(f.transfers for f in facts),
            "time_to_owner_measured": len(owner_times),
            "sla_breaches": breaches,
            "sla_breaches_caused_by_reassignment": breaches_moved,
            "escalations": len(escalations),
            "escalations_resolved": len(cycles),
            "reviews_resolved": reviews,
        },
    }


BREAKDOWNS: dict[str, Callable[[TicketFacts], str]] = {
    "resolver_group": lambda facts: facts.group,
    "source_system": lambda facts: facts.source_system,
    "intent": lambda facts: facts.intent,
    "week": lambda facts: facts.week,
}


def breakdown(
    facts: Iterable[TicketFacts], key: Callable[[TicketFacts], str]
) -> dict[str, dict[str, Any]]:
    """Summarize the facts per value of `key`, sorted by that value."""
    buckets: dict[str, list[TicketFacts]] = defaultdict(list)
    for item in facts:
        buckets[key(item)].append(item)
    return {name: summarize(buckets[name]) for name in sorted(buckets)}


def confusion(facts: Iterable[TicketFacts]) -> dict[str, dict[str, int]]:
    """Count first assignments (rows) against owners (columns) of resolved tickets."""
    counts: Counter[tuple[str, str]] = Counter(
        (f.first_group, f.owner)
        for f in facts
        if f.first_group is not None and f.owner is not None
    )
    table: dict[str, dict[str, int]] = defaultdict(dict)
    for (first, owner), count in sorted(counts.items()):
        table[first][owner] = count
    return dict(table)


def confidence_histogram(
    facts: Iterable[TicketFacts], *, bins: int = 20
) -> list[dict[str, float | int]]:
    """Count first decisions per confidence bin of width 1/bins."""
    counts = [0] * bins
    for item in facts:
        counts[min(int(item.confidence * bins), bins - 1)] += 1
    return [
        {"low": round(i / bins, 4), "high": round((i + 1) / bins, 4), "tickets": n}
        for i, n in enumerate(counts)
    ]


def _ratio(part: float, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _median(values: Sequence[float]) -> float | None:
    return None if not values else round(statistics.median(values), 1)


def _quantile(values: Sequence[float], share: float) -> float | None:
    # Nearest rank, so the figure is one of the measured values.
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)
