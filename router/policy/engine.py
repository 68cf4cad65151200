"""Evaluate the policy rules for one ticket and collect their effects."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.policy.facts import TicketFacts, Unknown, as_date, visible_context
from router.policy.schemas import (
    Condition,
    FieldRef,
    Match,
    NotifySpec,
    PolicyFile,
    PolicySettings,
    Rule,
)
from router.schemas import NotificationEffect, TaskEffect

ACCOUNT_MANAGER_PATH = "context.account.account_manager"


@dataclass
class PolicyOutcome:
    """The rules that fired for a ticket, the reasons, and the effects they request."""

    rules_fired: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    route_to: str | None = None
    # The rule whose `route_to` won.
    route_rule: str | None = None
    review: bool = False
    workflows: list[str] = field(default_factory=list)
    regulated: list[str] = field(default_factory=list)
    priority: int | None = None
    tasks: list[TaskEffect] = field(default_factory=list)
    notifications: list[NotificationEffect] = field(default_factory=list)
    escalation: str | None = None
    unknown_fields: list[str] = field(default_factory=list)


def ordered_rules(policies: Mapping[str, PolicyFile]) -> list[Rule]:
    """Return every rule in evaluation order: policies by order then name."""
    ordered = sorted(policies.items(), key=lambda item: (item[1].order, item[0]))
    return [rule for _, policy in ordered for rule in policy.rules]


def evaluate(
    rules: Sequence[Rule], *, facts: TicketFacts, settings: PolicySettings | None
) -> PolicyOutcome:
    """Evaluate the rules in order and merge the effects of those that match.

    A later rule's `route_to`, `priority` and `escalation` win over an earlier
    one's, and tasks and notifications add up, so a general rule can come first
    and a specific one refine it. A rule with `stop: true` ends the evaluation.
    """
    outcome = PolicyOutcome()
    regulated = set(settings.regulated_workflows) if settings else set()
    financial_roles = list(settings.financial.roles) if settings else []
    for rule in rules:
        reasons: list[str] = []
        if not _match(rule.when, facts, reasons):
            continue
        outcome.rules_fired.append(rule.id)
        outcome.reasons.append(f"rule {rule.id} matched: {'; '.join(reasons)}")
        _apply(rule, facts, outcome, regulated=regulated, roles=financial_roles)
        if rule.stop:
            break
    outcome.unknown_fields = sorted(facts.unknown_read)
    return outcome


def _apply(
    rule: Rule,
    facts: TicketFacts,
    outcome: PolicyOutcome,
    *,
    regulated: set[str],
    roles: list[str],
) -> None:
    effects = rule.then
    if effects.route_to is not None:
        outcome.route_to = effects.route_to
        outcome.route_rule = rule.id
    if effects.review:
        outcome.review = True
    if effects.workflow is not None:
        outcome.workflows.append(effects.workflow)
        if effects.workflow in regulated:
            outcome.regulated.append(effects.workflow)
    if effects.priority is not None:
        outcome.priority = effects.priority
    if effects.escalation is not None:
        outcome.escalation = effects.escalation
    for task in effects.tasks:
        outcome.tasks.append(
            TaskEffect(
                type=task.type,
                title=facts.render(task.title),
                description=facts.render(task.description),
                assignee=facts.render(task.assignee) if task.assignee else None,
            )
        )
    for spec in effects.notify:
        notification = _notification(spec, facts, roles=roles)
        if notification is None:
            outcome.reasons.append(
                f"rule {rule.id}: no address for {spec.target!r}, so it was not "
                "notified"
            )
            continue
        outcome.notifications.append(notification)


def _notification(
    spec: NotifySpec, facts: TicketFacts, *, roles: list[str]
) -> NotificationEffect | None:
    kind, _, name = spec.target.partition(":")
    if kind == "account_manager" and not name:
        address = facts.value(ACCOUNT_MANAGER_PATH)
        if not isinstance(address, str) or not address:
            return None
        name = address
    target = f"{kind}:{name}"
    allowed = kind in roles or target in roles or spec.target in roles
    return NotificationEffect(
        target=target,
        reason=facts.render(spec.reason),
        context=visible_context(
            facts.ticket.context,
            financial_fields=facts.financial_fields,
            allowed=allowed,
        ),
    )


def _match(match: Match, facts: TicketFacts, reasons: list[str]) -> bool:
    for item in match.all:
        if not _holds(item, facts, reasons):
            return False
    if match.any and not any(_holds(item, facts, reasons) for item in match.any):
        return False
    if match.not_ is not None:
        inner: list[str] = []
        if _holds(match.not_, facts, inner):
            return False
        reasons.append(f"not ({'; '.join(inner) or 'condition'})")
    return True


def _holds(item: Condition | Match, facts: TicketFacts, reasons: list[str]) -> bool:
    if isinstance(item, Match):
        return _match(item, facts, reasons)
    return _test(item, facts, reasons)


def _test(condition: Condition, facts: TicketFacts, reasons: list[str]) -> bool:
    path = condition.field
    value = facts.value(path)
    if isinstance(value, Unknown):
        return False
    (name,) = condition.comparisons()
    raw: Any = getattr(condition, "in_" if name == "in" else name)
    expected = raw
    if isinstance(raw, FieldRef):
        expected = _reference_value(raw, facts)
        if isinstance(expected, Unknown):
            return False
    matched = _compare(name, value, expected, facts)
    if matched:
        reasons.append(_describe(condition, name, value, raw, expected, facts))
    return matched


def _reference_value(ref: FieldRef, facts: TicketFacts) -> Any:
    value = facts.value(ref.field)
    if not ref.plus and not ref.minus:
        return value
    terms = [(1, value)] + [(1, facts.value(path)) for path in ref.plus]
    terms += [(-1, facts.value(path)) for path in ref.minus]
    total = 0.0
    for sign, term in terms:
        if isinstance(term, Unknown):
            return term
        try:
            total += sign * float(term)
        except (TypeError, ValueError):
            return None
    return total


def _describe(
    condition: Condition,
    name: str,
    value: Any,
    raw: Any,
    expected: Any,
    facts: TicketFacts,
) -> str:
    path = condition.field
    left = path if path == "text" else f"{path} {facts.show(path, value)}"
    if isinstance(raw, FieldRef):
        named = " + ".join([raw.field, *raw.plus])
        if raw.minus:
            named += " - " + " - ".join(raw.minus)
        right = f"{named} {facts.show(raw.field, expected)}"
    else:
        right = repr(expected)
    return f"{left} {name.replace('_', ' ')} {right}"


def _compare(name: str, value: Any, expected: Any, facts: TicketFacts) -> bool:
    if name == "exists":
        return (value not in (None, "", [], {})) is bool(expected)
    if value is None:
        return False
    if name == "equals":
        return _fold(value) == _fold(expected)
    if name == "not_equals":
        return _fold(value) != _fold(expected)
    if name == "in":
        return _fold(value) in [_fold(item) for item in expected]
    if name == "not_in":
        return _fold(value) not in [_fold(item) for item in expected]
    if name == "contains":
        if isinstance(value, list):
            return _fold(expected) in [_fold(item) for item in value]
        return str(expected).casefold() in str(value).casefold()
    if name == "matches":
        return re.search(str(expected), str(value), re.IGNORECASE) is not None
    if name == "within_days":
        day = as_date(value)
        if day is None:
            return False
        days = (day - facts.now.date()).days
        return 0 <= days <= float(expected)
    return _compare_numbers(name, value, expected)


def _compare_numbers(name: str, value: Any, expected: Any) -> bool:
    try:
        left, right = float(value), float(expected)
    except (TypeError, ValueError):
        return False
    if name == "gt":
        return left > right
    if name == "gte":
        return left >= right
    if name == "lt":
        return left < right
    return left <= right


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value
