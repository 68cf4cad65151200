"""Checks that span several keys or files, run after each file passed its schema."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable
from typing import Any, Final

from router.mapping.errors import NO_VALUE, MappingProblem
from router.mapping.intents import keyword_words
from router.mapping.schemas import (
    CANONICAL_FIELDS,
    CLASSIFIER_FIELDS,
    DATETIME_FIELDS,
    DATETIME_TRANSFORMS,
    INT_FIELD_RANGES,
    LIST_FIELDS,
    SystemMapping,
    Taxonomy,
    Thresholds,
    ValueMap,
)
from router.schemas import Ticket

# Characters a keyword may contain; anything else is better written as a pattern.
_KEYWORD_CHARS: Final = re.compile(r"^[\w\s'./-]+$")
_TEXT_TRANSFORMS: Final = frozenset({"adf_text", "salesforce_id18"})


def _problem(file: str, key_path: str, value: Any, message: str) -> MappingProblem:
    return MappingProblem(file=file, key_path=key_path, value=value, message=message)


def check_system_mapping(
    mapping: SystemMapping, *, file: str, stem: str
) -> list[MappingProblem]:
    """Check the fields, value maps and label paths of one system mapping."""
    problems: list[MappingProblem] = []
    if mapping.system != stem:
        problems.append(
            _problem(
                file,
                "system",
                mapping.system,
                f"does not match the file name; rename the file to "
                f"{mapping.system}.yaml or set system: {stem}",
            )
        )
    if "external_id" not in mapping.fields:
        problems.append(
            _problem(
                file,
                "fields",
                NO_VALUE,
                "missing the external_id entry; map it to the id people use, such "
                "as number or key",
            )
        )
    for name, spec in mapping.fields.items():
        if name not in CANONICAL_FIELDS:
            problems.append(_unknown_field(file, f"fields.{name}", name))
            continue
        problems.extend(_check_field(mapping, name, file=file))
        if "prefer" in spec.model_fields_set and not spec.reference:
            problems.append(
                _problem(
                    file,
                    f"fields.{name}.prefer",
                    spec.prefer,
                    "applies only to reference fields; add reference: true or "
                    "remove prefer",
                )
            )
    for name, value_map in mapping.values.items():
        if name not in CANONICAL_FIELDS:
            problems.append(_unknown_field(file, f"values.{name}", name))
            continue
        problems.extend(_check_value_map(mapping, name, value_map, file=file))
    problems.extend(_check_label_paths(mapping, file=file))
    return problems


def _unknown_field(file: str, key_path: str, name: str) -> MappingProblem:
    return _problem(
        file,
        key_path,
        name,
        f"unknown Ticket field; expected one of {', '.join(CANONICAL_FIELDS)}",
    )


def _check_field(
    mapping: SystemMapping, name: str, *, file: str
) -> list[MappingProblem]:
    transform = mapping.fields[name].transform
    key_path = f"fields.{name}.transform"
    if name in INT_FIELD_RANGES and name not in mapping.values and transform != "int":
        return [
            _problem(
                file,
                f"fields.{name}",
                NO_VALUE,
                f"{name} is a number, so it needs a value map at values.{name} or "
                "transform: int",
            )
        ]
    if transform is None:
        return []
    if transform in DATETIME_TRANSFORMS and name not in DATETIME_FIELDS:
        expected = "created_at and updated_at"
    elif transform == "int" and name not in INT_FIELD_RANGES:
        expected = "priority, urgency and impact"
    elif transform in _TEXT_TRANSFORMS and (
        name in DATETIME_FIELDS or name in INT_FIELD_RANGES or name in LIST_FIELDS
    ):
        expected = "text fields"
    else:
        return []
    return [
        _problem(
            file,
            key_path,
            transform,
            f"transform {transform} does not fit {name}; it applies to {expected}",
        )
    ]


def _check_value_map(
    mapping: SystemMapping, name: str, value_map: ValueMap, *, file: str
) -> list[MappingProblem]:
    base = f"values.{name}"
    if name not in mapping.fields:
        return [
            _problem(
                file,
                base,
                NO_VALUE,
                f"there is no fields.{name} entry for this value map; add one or "
                "remove the map",
            )
        ]
    if name in DATETIME_FIELDS or name in LIST_FIELDS:
        return [_problem(file, base, NO_VALUE, f"{name} cannot have a value map")]

    problems = [
        problem
        for key, target in value_map.map.items()
        if (
            problem := _check_target(
                name, target, file=file, key_path=f"{base}.map.{key}"
            )
        )
    ]
    if value_map.default is not None:
        problem = _check_target(
            name, value_map.default, file=file, key_path=f"{base}.default"
        )
        if problem:
            problems.append(problem)
    if value_map.keep_unknown and value_map.default is not None:
        problems.append(
            _problem(
                file,
                f"{base}.keep_unknown",
                True,
                "cannot be combined with default; keep one of them",
            )
        )
    if value_map.keep_unknown and name in INT_FIELD_RANGES:
        problems.append(
            _problem(
                file,
                f"{base}.keep_unknown",
                True,
                f"{name} is a number, so unknown source values cannot be kept; set "
                "a default instead",
            )
        )
    return problems


def _check_target(
    name: str, target: Any, *, file: str, key_path: str
) -> MappingProblem | None:
    if name in INT_FIELD_RANGES:
        low, high = INT_FIELD_RANGES[name]
        if isinstance(target, int) and low <= target <= high:
            return None
        return _problem(
            file,
            key_path,
            target,
            f"{name} maps to a whole number from {low} to {high}; write it without "
            "quotes",
        )
    if isinstance(target, str):
        return None
    return _problem(
        file, key_path, target, f"{name} maps to text; put quotes around the value"
    )


def _check_label_paths(mapping: SystemMapping, *, file: str) -> list[MappingProblem]:
    problems = []
    for name in sorted(CLASSIFIER_FIELDS & set(mapping.fields)):
        for index, path in enumerate(mapping.fields[name].path):
            for label_path in mapping.label_paths:
                if path == label_path or path.startswith(f"{label_path}."):
                    problems.append(
                        _problem(
                            file,
                            f"fields.{name}.path[{index}]",
                            path,
                            f"copies {label_path}, which contains the routing label, "
                            f"into {name}, which the classifier reads; map another "
                            "source path, the record stays in raw anyway",
                        )
                    )
    return problems


def check_taxonomy(taxonomy: Taxonomy, *, file: str) -> list[MappingProblem]:
    """Check intent ids, keywords and resolver group names for duplicates and gaps."""
    ids = [intent.id for intent in taxonomy.intents]
    problems = _duplicates(ids, file=file, item="intents[{}].id", noun="intent id")
    if taxonomy.fallback_intent not in ids:
        problems.append(
            _problem(
                file,
                "fallback_intent",
                taxonomy.fallback_intent,
                "is not an intent id; add an intent with this id or name another",
            )
        )
    for index, intent in enumerate(taxonomy.intents):
        if intent.id != taxonomy.fallback_intent and not (
            intent.keywords or intent.patterns
        ):
            problems.append(
                _problem(
                    file,
                    f"intents[{index}]",
                    intent.id,
                    "has no keywords or patterns, so it can never match; add some or "
                    "remove the intent",
                )
            )
        problems.extend(_check_keywords(intent.keywords, file=file, index=index))

    names = [group.name for group in taxonomy.resolver_groups]
    problems.extend(
        _duplicates(names, file=file, item="resolver_groups[{}].name", noun="group")
    )
    for index, group in enumerate(taxonomy.resolver_groups):
        jira = group.targets.jira
        if jira is not None and jira.project is None and jira.component is None:
            problems.append(
                _problem(
                    file,
                    f"resolver_groups[{index}].targets.jira",
                    NO_VALUE,
                    "names neither a project nor a component; add one or remove jira",
                )
            )
    return problems


def _check_keywords(
    keywords: list[str], *, file: str, index: int
) -> list[MappingProblem]:
    problems = []
    seen: set[str] = set()
    for position, keyword in enumerate(keywords):
        key_path = f"intents[{index}].keywords[{position}]"
        if not _KEYWORD_CHARS.match(keyword) or not keyword_words(keyword):
            problems.append(
                _problem(
                    file,
                    key_path,
                    keyword,
                    "keywords are matched as words, so they may only contain letters, "
                    "digits, spaces and ' . / -; write a pattern instead",
                )
            )
        if keyword in seen:
            problems.append(
                _problem(file, key_path, keyword, "listed twice; remove one of them")
            )
        seen.add(keyword)
    return problems


def _duplicates(
    values: list[str], *, file: str, item: str, noun: str
) -> list[MappingProblem]:
    first_index: dict[str, int] = {}
    problems = []
    for index, value in enumerate(values):
        folded = value.casefold()
        if folded in first_index:
            first = item.format(first_index[folded])
            problems.append(
                _problem(
                    file,
                    item.format(index),
                    value,
                    f"duplicate {noun}, first given at {first}; give each its own name",
                )
            )
        else:
            first_index[folded] = index
    return problems


def check_thresholds(
    thresholds: Thresholds,
    group_names: list[str] | None,
    *,
    file: str,
    intent_ids: list[str] | None = None,
) -> list[MappingProblem]:
    """Check that thresholds name resolver groups and intents of the taxonomy.

    `group_names` is None when taxonomy.yaml is missing or unreadable, which is
    reported on its own, so the groups are not checked then.
    """
    if group_names is None:
        return []
    names = group_names
    problems = []
    for index, intent in enumerate(thresholds.force_review_intents):
        if intent_ids is not None and intent not in intent_ids:
            problems.append(
                _problem(
                    file,
                    f"force_review_intents[{index}]",
                    intent,
                    f"is not an intent in taxonomy.yaml{_suggest(intent, intent_ids)}",
                )
            )
    for group in thresholds.groups:
        if group not in names:
            problems.append(
                _problem(
                    file,
                    f"groups.{group}",
                    group,
                    f"is not a resolver group in taxonomy.yaml{_suggest(group, names)}",
                )
            )
    if thresholds.review_candidates > len(names):
        problems.append(
            _problem(
                file,
                "review_candidates",
                thresholds.review_candidates,
                f"is more than the {len(names)} resolver groups in taxonomy.yaml; "
                "lower it",
            )
        )
    return problems


def check_example(
    ticket: Ticket, systems: Collection[str], *, file: str
) -> list[MappingProblem]:
    """Check that an example ticket comes from a system that has a mapping."""
    if ticket.source_system in systems:
        return []
    return [
        _problem(
            file,
            "source_system",
            ticket.source_system,
            "has no mapping file; expected one of "
            f"{', '.join(sorted(systems)) or '(no system mappings found)'}",
        )
    ]


def _suggest(value: str, choices: Iterable[str]) -> str:
    by_fold = {choice.casefold(): choice for choice in choices}
    close = difflib.get_close_matches(value.casefold(), list(by_fold), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {by_fold[close[0]]!r}?"
    return "; add the group to resolver_groups or fix the name"
