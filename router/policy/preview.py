"""Show what the policies do with one ticket, without enrichers or side effects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from router.mapping import MappingSet
from router.policy.engine import PolicyOutcome, evaluate, ordered_rules
from router.policy.facts import ModelOutput, TicketFacts
from router.policy.service import Verdict, apply_outcome, decide
from router.schemas import DecisionAction, Ticket


@dataclass(frozen=True)
class PolicyPreview:
    """The decision the policies would make for a ticket, and why."""

    ticket_key: str
    now: datetime
    route_to: str | None
    action: DecisionAction
    outcome: PolicyOutcome
    notes: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """Return the preview as the JSON object of `opsroute policy test --json`."""
        return {
            "route_to": self.route_to,
            "action": self.action.value,
            "tasks": [
                {"type": task.type, "title": task.title, "assignee": task.assignee}
                for task in self.outcome.tasks
            ],
            "notifications": [
                {"target": item.target, "reason": item.reason}
                for item in self.outcome.notifications
            ],
            "escalation": self.outcome.escalation,
            "rules_fired": list(self.outcome.rules_fired),
        }


def preview_ticket(
    ticket: Ticket,
    *,
    mappings: MappingSet,
    now: datetime,
    model: ModelOutput | None = None,
) -> PolicyPreview:
    """Evaluate the policies for a ticket as the router would, at time `now`.

    Without `model`, conditions on model output do not match, and a ticket that
    no rule routes goes to review, as the classifier's output is unknown.
    """
    intent, _ = mappings.match_intent(ticket)
    settings = mappings.policy_settings
    facts = TicketFacts(
        ticket=ticket,
        intent=intent,
        model=model,
        now=now,
        financial_fields=tuple(settings.financial.fields) if settings else (),
    )
    outcome = evaluate(ordered_rules(mappings.policies), facts=facts, settings=settings)
    group = outcome.route_to or (model.group if model else None)
    if group is None:
        note = "no rule routes the ticket and no model output was given"
        verdict = Verdict(DecisionAction.REVIEW, mappings.thresholds.default, (note,))
    else:
        verdict = decide(
            ticket=ticket,
            group=group,
            confidence=model.confidence if model else 0.0,
            intent=intent,
            thresholds=mappings.thresholds,
            known_groups=frozenset(mappings.taxonomy.group_names),
            force_review_intents=frozenset(mappings.thresholds.force_review_intents),
            routed_by=outcome.route_rule,
        )
    final = apply_outcome(
        verdict,
        outcome,
        unknown_fields=outcome.unknown_fields,
    )
    return PolicyPreview(
        ticket_key=ticket.key,
        now=now,
        route_to=group,
        action=final.action,
        outcome=outcome,
        notes=final.notes,
    )
