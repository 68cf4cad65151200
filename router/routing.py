"""The ticket router: normalize, enrich, classify and decide a batch of tickets."""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from router.classification.features import input_from_ticket
from router.classification.model import RoutingModel
from router.enrichment.pipeline import EnrichmentPipeline
from router.mapping import MappingSet
from router.policy.engine import evaluate, ordered_rules
from router.policy.facts import ModelOutput, TicketFacts
from router.policy.service import apply_outcome, decide, policy_version
from router.schemas import Decision, EnrichmentCall, Explanation, Ticket


class TicketRouter:
    """Route tickets with one model and one set of mappings.

    The router has no database session, so callers store the decisions it returns, so
    one router serves the demo, the CLI and the service alike.
    """

    def __init__(
        self,
        *,
        model: RoutingModel,
        mappings: MappingSet,
        enrichment: EnrichmentPipeline | None = None,
    ) -> None:
        self.model = model
        self.mappings = mappings
        self.enrichment = enrichment or EnrichmentPipeline()
        self.known_groups = frozenset(mappings.taxonomy.group_names)
        self.policy_version = mappings_policy_version(mappings)
        self.rules = ordered_rules(mappings.policies)
        settings = mappings.policy_settings
        self.financial_fields = tuple(settings.financial.fields) if settings else ()
        self.candidate_count = mappings.thresholds.review_candidates
        self.force_review_intents = frozenset(mappings.thresholds.force_review_intents)
        # The model's vocabularies are about a million objects that live as long as
        # the process. Freezing them stops each garbage collection from scanning them
        # again, which had made storing a batch about 40% slower.
        gc.freeze()

    def normalize(
        self, system: str, records: Sequence[Mapping[str, Any]]
    ) -> list[Ticket]:
        """Turn records of one system into tickets through its mapping."""
        return [self.mappings.normalize(system, record) for record in records]

    def route(
        self, tickets: Sequence[Ticket], *, now: datetime | None = None
    ) -> list[Decision]:
        """Enrich, classify and decide each ticket, keeping the order of the tickets."""
        return [decision for _, decision in self.route_enriched(tickets, now=now)]

    def route_enriched(
        self, tickets: Sequence[Ticket], *, now: datetime | None = None
    ) -> list[tuple[Ticket, Decision]]:
        """Route tickets and return each one with its enriched context.

        Enrichers never delay a batch by more than their timeouts; a failed one
        leaves its fields unknown, which the decision's notes name.
        """
        if not tickets:
            return []
        decided_at = now or datetime.now(UTC)
        if self.enrichment:
            pairs = self.enrichment.enrich(tickets)
        else:
            pairs = [(ticket, []) for ticket in tickets]
        enriched = [ticket for ticket, _ in pairs]
        inputs = [input_from_ticket(ticket) for ticket in enriched]
        predictions, rows = self.model.predict(inputs, top=self.candidate_count)
        decisions = []
        for (ticket, calls), prediction in zip(pairs, predictions, strict=True):
            chosen, runner_up = self.model.explain(rows, prediction)
            decisions.append(
                self._decide(
                    ticket,
                    prediction=ModelOutput(
                        group=prediction.group,
                        confidence=prediction.confidence,
                        urgency=prediction.urgency,
                    ),
                    explanation=Explanation(chosen=chosen, runner_up=runner_up),
                    candidates=list(prediction.candidates),
                    calls=calls,
                    decided_at=decided_at,
                )
            )
        return list(zip(enriched, decisions, strict=True))

    def _decide(
        self,
        ticket: Ticket,
        *,
        prediction: ModelOutput,
        explanation: Explanation,
        candidates: list[Any],
        calls: list[EnrichmentCall],
        decided_at: datetime,
    ) -> Decision:
        intent, intent_matches = self.mappings.match_intent(ticket)
        facts = TicketFacts(
            ticket=ticket,
            intent=intent,
            model=prediction,
            now=decided_at,
            financial_fields=self.financial_fields,
        )
        outcome = evaluate(
            self.rules, facts=facts, settings=self.mappings.policy_settings
        )
        group = outcome.route_to or prediction.group
        verdict = decide(
            ticket=ticket,
            group=group,
            confidence=prediction.confidence,
            intent=intent,
            thresholds=self.mappings.thresholds,
            known_groups=self.known_groups,
            force_review_intents=self.force_review_intents,
            routed_by=outcome.route_rule,
        )
        verdict = apply_outcome(verdict, outcome, unknown_fields=outcome.unknown_fields)
        explanation.intent_matches = intent_matches
        explanation.notes = list(verdict.notes)
        return Decision(
            ticket_key=ticket.key,
            resolver_group=group,
            intent=intent,
            urgency=prediction.urgency if prediction.urgency else ticket.urgency,
            confidence=prediction.confidence,
            action=verdict.action,
            threshold=verdict.threshold,
            candidates=candidates,
            explanation=explanation,
            model_version=self.model.version,
            policy_version=self.policy_version,
            decided_at=decided_at,
            rules_fired=outcome.rules_fired,
            tasks=outcome.tasks,
            notifications=outcome.notifications,
            escalation=outcome.escalation,
            priority=outcome.priority,
            unknown_fields=outcome.unknown_fields,
            enrichment=calls,
        )

    def route_records(
        self, system: str, records: Sequence[Mapping[str, Any]]
    ) -> list[tuple[Ticket, Decision]]:
        """Normalize and route records of one system."""
        tickets = self.normalize(system, records)
        return list(zip(tickets, self.route(tickets), strict=True))


def mappings_policy_version(mappings: MappingSet) -> str:
    """Return the policy version of a mapping set, policies included."""
    return policy_version(
        thresholds=mappings.thresholds,
        taxonomy=mappings.taxonomy,
        policies=mappings.policies,
        settings=mappings.policy_settings,
        escalations=mappings.escalations,
    )
