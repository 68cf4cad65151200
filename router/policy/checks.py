"""Checks of the policy files that need other files: groups, intents, escalations."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping

from router.escalation.schemas import EscalationFile
from router.mapping.errors import NO_VALUE, MappingProblem
from router.policy.schemas import Condition, Match, PolicyFile, PolicySettings
from router.schemas import Ticket

# The first part of a condition's field path, when it is not a Ticket field.
DERIVED_ROOTS = frozenset({"text", "intent", "model", "context"})
MODEL_FIELDS = frozenset({"group", "confidence", "urgency"})


def check_policies(
    policies: Mapping[str, PolicyFile],
    *,
    settings: PolicySettings | None,
    escalations: Mapping[str, EscalationFile],
    group_names: Collection[str] | None,
    intent_ids: Collection[str] | None,
    display: Callable[..., str],
) -> list[MappingProblem]:
    """Check every policy against the taxonomy, the escalations and each other.

    Rule ids must be unique across all policies, `route_to` and task assignees
    that name no person must be resolver groups, `escalation` must name a file
    under `escalation/`, and conditions must use known fields, intents and valid
    regular expressions.
    """
    ticket_fields = frozenset(Ticket.model_fields)
    problems: list[MappingProblem] = []
    seen: dict[str, str] = {}
    for stem, policy in sorted(policies.items()):
        file = display("policies", f"{stem}.yaml")
        for index, rule in enumerate(policy.rules):
            where = f"rules[{index}]"
            if rule.id in seen:
                problems.append(
                    _problem(
                        file,
                        f"{where}.id",
                        rule.id,
                        f"duplicates the rule id in {seen[rule.id]}; give each "
                        "rule its own id",
                    )
                )
            seen.setdefault(rule.id, file)
            problems.extend(
                _check_match(
                    rule.when,
                    file=file,
                    where=f"{where}.when",
                    ticket_fields=ticket_fields,
                    intent_ids=intent_ids,
                )
            )
            effects = rule.then
            if (
                effects.route_to is not None
                and group_names is not None
                and effects.route_to not in group_names
            ):
                problems.append(
                    _problem(
                        file,
                        f"{where}.then.route_to",
                        effects.route_to,
                        "is not a resolver group in taxonomy.yaml; add it there "
                        "or fix the name",
                    )
                )
            if effects.escalation is not None and effects.escalation not in escalations:
                problems.append(
                    _unknown_escalation(
                        file,
                        f"{where}.then.escalation",
                        effects.escalation,
                        escalations,
                    )
                )
    if settings is not None and settings.default_escalation is not None:
        if settings.default_escalation not in escalations:
            problems.append(
                _unknown_escalation(
                    display("policy.yaml"),
                    "default_escalation",
                    settings.default_escalation,
                    escalations,
                )
            )
    return problems


def _check_match(
    match: Match,
    *,
    file: str,
    where: str,
    ticket_fields: Collection[str],
    intent_ids: Collection[str] | None,
) -> list[MappingProblem]:
    problems: list[MappingProblem] = []
    parts: list[tuple[str, Condition | Match]] = [
        (f"{where}.all[{i}]", item) for i, item in enumerate(match.all)
    ]
    parts += [(f"{where}.any[{i}]", item) for i, item in enumerate(match.any)]
    if match.not_ is not None:
        parts.append((f"{where}.not", match.not_))
    if not parts:
        problems.append(
            _problem(
                file,
                where,
                NO_VALUE,
                "has no condition; add `all`, `any` or `not`, or use "
                "`all: [{field: text, exists: true}]` to match every ticket",
            )
        )
    for path, item in parts:
        if isinstance(item, Match):
            problems.extend(
                _check_match(
                    item,
                    file=file,
                    where=path,
                    ticket_fields=ticket_fields,
                    intent_ids=intent_ids,
                )
            )
            continue
        problems.extend(
            _check_condition(
                item,
                file=file,
                where=path,
                ticket_fields=ticket_fields,
                intent_ids=intent_ids,
            )
        )
    return problems


def _check_condition(
    condition: Condition,
    *,
    file: str,
    where: str,
    ticket_fields: Collection[str],
    intent_ids: Collection[str] | None,
) -> list[MappingProblem]:
    problems: list[MappingProblem] = []
    root, _, rest = condition.field.partition(".")
    if root not in ticket_fields and root not in DERIVED_ROOTS:
        problems.append(
            _problem(
                file,
                f"{where}.field",
                condition.field,
                "is not a ticket field; use a Ticket field, text, intent, "
                "model.group, model.confidence or context.<key>",
            )
        )
    elif root == "model" and rest not in MODEL_FIELDS:
        problems.append(
            _problem(
                file,
                f"{where}.field",
                condition.field,
                "is not model output; use model.group, model.confidence or "
                "model.urgency",
            )
        )
    if condition.matches is not None:
        try:
            re.compile(condition.matches)
        except re.error as exc:
            problems.append(
                _problem(
                    file,
                    f"{where}.matches",
                    condition.matches,
                    f"is not a valid regular expression: {exc}",
                )
            )
    if root == "intent" and intent_ids is not None:
        named = [condition.equals, *(condition.in_ or [])]
        for intent in named:
            if intent is not None and intent not in intent_ids:
                problems.append(
                    _problem(
                        file,
                        where,
                        intent,
                        "is not an intent id in taxonomy.yaml; add the intent "
                        "there or fix the id",
                    )
                )
    return problems


def _unknown_escalation(
    file: str, key_path: str, name: str, escalations: Mapping[str, EscalationFile]
) -> MappingProblem:
    known = ", ".join(sorted(escalations)) or "none"
    return _problem(
        file,
        key_path,
        name,
        f"names no file in escalation/; expected one of: {known}",
    )


def _problem(file: str, key_path: str, value: object, message: str) -> MappingProblem:
    return MappingProblem(file=file, key_path=key_path, value=value, message=message)
