"""The rule engine: conditions, rule order, effects, unknown and financial fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from router.policy.engine import evaluate, ordered_rules
from router.policy.facts import ModelOutput, TicketFacts
from router.policy.schemas import Condition, PolicyFile, PolicySettings, Rule
from router.schemas import Ticket

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SETTINGS = PolicySettings.model_validate(
    {
        "version": "1",
        "regulated_workflows": ["legal_hold"],
        "financial": {"fields": ["account.arr"], "roles": ["account_manager"]},
    }
)


def ticket(**context: Any) -> Ticket:
    return Ticket(
        source_system="salesforce",
        external_id="00000042",
        title="We were charged twice",
        description="Duplicate charge on the last invoice.",
        priority=3,
        labels=["billing"],
        context=context,
    )


def facts_for(
    subject: Ticket, *, model: ModelOutput | None = None, intent: str = "general"
) -> TicketFacts:
    return TicketFacts(
        ticket=subject,
        intent=intent,
        model=model,
        now=NOW,
        financial_fields=SETTINGS.financial.fields,
    )


def rule(rule_id: str, conditions: list[dict[str, Any]], **then: Any) -> Rule:
    return Rule.model_validate(
        {"id": rule_id, "when": {"all": conditions}, "then": then}
    )


def fired(rules: list[Rule], subject: Ticket, **kwargs: Any) -> list[str]:
    outcome = evaluate(rules, facts=facts_for(subject, **kwargs), settings=SETTINGS)
    return outcome.rules_fired


@pytest.mark.parametrize(
    ("condition", "matches"),
    [
        ({"field": "priority", "equals": 3}, True),
        ({"field": "priority", "in": [1, 2]}, False),
        ({"field": "priority", "not_in": [1, 2]}, True),
        ({"field": "labels", "contains": "BILLING"}, True),
        ({"field": "text", "matches": "charged (twice|two times)"}, True),
        ({"field": "context.account.tier", "equals": "Premium"}, True),
        ({"field": "context.account.arr", "gte": 120000}, True),
        ({"field": "context.account.arr", "lt": 120000}, False),
        ({"field": "context.account.missing", "exists": False}, True),
        ({"field": "context.account.renewal_date", "within_days": 45}, True),
        ({"field": "context.account.renewal_date", "within_days": 10}, False),
        ({"field": "model.confidence", "gt": 0.5}, True),
        ({"field": "intent", "not_equals": "general"}, False),
    ],
)
def test_condition_comparisons(condition: dict[str, Any], matches: bool) -> None:
    subject = ticket(
        account={"tier": "premium", "arr": 120000, "renewal_date": "2026-04-01"}
    )
    result = fired(
        [rule("r", [condition], review=True)],
        subject,
        model=ModelOutput(group="Access", confidence=0.7),
    )
    assert (result == ["r"]) is matches


def test_field_reference_subtracts_fields() -> None:
    condition = {
        "field": "context.seats.requested",
        "gt": {
            "field": "context.contract.seats_bought",
            "minus": "context.seats.in_use",
        },
    }
    over = ticket(seats={"requested": 5, "in_use": 148}, contract={"seats_bought": 150})
    under = ticket(
        seats={"requested": 2, "in_use": 148}, contract={"seats_bought": 150}
    )
    assert fired([rule("seats", [condition], review=True)], over) == ["seats"]
    assert fired([rule("seats", [condition], review=True)], under) == []


def test_later_rule_overrides_route_and_stop_ends() -> None:
    always = {"field": "text", "exists": True}
    rules = [
        rule("first", [always], route_to="Access"),
        rule("second", [always], route_to="Storage"),
        Rule.model_validate(
            {"id": "stopper", "when": {"all": [always]}, "then": {}, "stop": True}
        ),
        rule("never", [always], route_to="Hardware"),
    ]
    outcome = evaluate(rules, facts=facts_for(ticket()), settings=SETTINGS)
    assert outcome.rules_fired == ["first", "second", "stopper"]
    assert outcome.route_to == "Storage"
    assert outcome.route_rule == "second"


def test_unknown_context_field_never_matches() -> None:
    subject = ticket(account={"tier": "premium"}, unknown_fields=["account.arr"])
    conditions = [{"field": "context.account.arr", "exists": False}]
    outcome = evaluate(
        [rule("r", conditions, review=True)],
        facts=facts_for(subject),
        settings=SETTINGS,
    )
    assert outcome.rules_fired == []
    assert outcome.unknown_fields == ["context.account.arr"]


def test_missing_model_output_is_unknown() -> None:
    conditions = [{"field": "model.group", "equals": "Access"}]
    outcome = evaluate(
        [rule("r", conditions, review=True)], facts=facts_for(ticket()), settings=None
    )
    assert outcome.rules_fired == []
    assert outcome.unknown_fields == ["model.group"]


def test_regulated_workflow_is_reported() -> None:
    always = {"field": "text", "exists": True}
    outcome = evaluate(
        [rule("hold", [always], workflow="legal_hold")],
        facts=facts_for(ticket()),
        settings=SETTINGS,
    )
    assert outcome.regulated == ["legal_hold"]


def test_financial_values_hidden_from_texts() -> None:
    subject = ticket(account={"arr": 250000, "name": "Initech"})
    conditions = [{"field": "context.account.arr", "gte": 100000}]
    task = {"type": "refund_approval", "title": "Refund {context.account.arr}"}
    outcome = evaluate(
        [rule("r", conditions, tasks=[task])],
        facts=facts_for(subject),
        settings=SETTINGS,
    )
    assert outcome.tasks[0].title == "Refund [restricted]"
    assert "250000" not in " ".join(outcome.reasons)


def test_financial_context_only_for_allowed_roles() -> None:
    subject = ticket(
        account={"arr": 250000, "name": "Initech", "account_manager": "am@example.com"}
    )
    always = {"field": "text", "exists": True}
    notify = [
        {"target": "account_manager:", "reason": "renewal"},
        {"target": "channel:#billing", "reason": "dispute"},
    ]
    outcome = evaluate(
        [rule("r", [always], notify=notify)],
        facts=facts_for(subject),
        settings=SETTINGS,
    )
    manager, channel = outcome.notifications
    assert manager.target == "account_manager:am@example.com"
    assert manager.context["account"]["arr"] == 250000
    assert "arr" not in channel.context["account"]
    assert channel.context["account"]["name"] == "Initech"


def test_account_manager_without_address_is_skipped() -> None:
    always = {"field": "text", "exists": True}
    notify = [{"target": "account_manager:", "reason": "renewal"}]
    outcome = evaluate(
        [rule("r", [always], notify=notify)], facts=facts_for(ticket()), settings=None
    )
    assert outcome.notifications == []
    assert "no address" in outcome.reasons[-1]


def test_policies_ordered_by_order_then_name() -> None:
    always = {"field": "text", "exists": True}

    def policy(order: int, rule_id: str) -> PolicyFile:
        return PolicyFile(version="1", order=order, rules=[rule(rule_id, [always])])

    rules = ordered_rules(
        {"b": policy(5, "b-rule"), "a": policy(5, "a-rule"), "c": policy(1, "c-rule")}
    )
    assert [item.id for item in rules] == ["c-rule", "a-rule", "b-rule"]


def test_condition_needs_one_comparison() -> None:
    with pytest.raises(ValueError, match="exactly one comparison"):
        Condition.model_validate({"field": "priority", "equals": 1, "gt": 0})
