"""Policy decisions: thresholds, per-group overrides and forced review."""

from __future__ import annotations

import math
from typing import Any

import pytest

from router.mapping import MappingSet, Thresholds, load_mappings
from router.policy.service import Verdict, decide, policy_version
from router.schemas import DecisionAction, Ticket

THRESHOLDS = Thresholds(version="7", default=0.9, groups={"Hardware": 0.6})
KNOWN_GROUPS = ("Hardware", "Access", "Storage")
PRINTER_TICKET = Ticket(
    source_system="servicenow",
    external_id="INC0012345",
    title="printer on floor two is jammed",
    description="paper stuck in tray two",
)


@pytest.fixture(scope="module")
def mapping_set() -> MappingSet:
    return load_mappings()


def decide_for(**overrides: Any) -> Verdict:
    """Decide with the module's thresholds and groups, or the arguments given."""
    arguments: dict[str, Any] = {
        "ticket": PRINTER_TICKET,
        "group": "Access",
        "confidence": 0.95,
        "intent": "hardware_fault",
        "thresholds": THRESHOLDS,
        "known_groups": KNOWN_GROUPS,
    }
    arguments.update(overrides)
    return decide(**arguments)


def test_confidence_at_threshold_auto_routes() -> None:
    verdict = decide_for(confidence=0.9)
    assert verdict.action is DecisionAction.AUTO_ROUTE
    assert verdict.threshold == 0.9


def test_confidence_below_threshold_goes_review() -> None:
    verdict = decide_for(confidence=math.nextafter(0.9, 0.0))
    assert verdict.action is DecisionAction.REVIEW
    assert verdict.threshold == 0.9


def test_group_override_lowers_threshold() -> None:
    verdict = decide_for(group="Hardware", confidence=0.7)
    assert verdict.action is DecisionAction.AUTO_ROUTE
    assert verdict.threshold == 0.6


def test_group_override_leaves_other_groups() -> None:
    verdict = decide_for(group="Access", confidence=0.7)
    assert verdict.action is DecisionAction.REVIEW
    assert verdict.threshold == 0.9


def test_group_override_raises_threshold() -> None:
    strict = Thresholds(default=0.5, groups={"Access": 0.99})
    verdict = decide_for(thresholds=strict, confidence=0.95)
    assert verdict.action is DecisionAction.REVIEW
    assert verdict.threshold == 0.99


def test_ticket_without_text_forced_review() -> None:
    empty = PRINTER_TICKET.model_copy(update={"title": "", "description": "  \n"})
    verdict = decide_for(ticket=empty, confidence=1.0)
    assert verdict.action is DecisionAction.FORCED_REVIEW
    assert verdict.notes == ("ticket has no text",)


def test_description_alone_is_enough_text() -> None:
    untitled = PRINTER_TICKET.model_copy(update={"title": ""})
    verdict = decide_for(ticket=untitled, confidence=1.0)
    assert verdict.action is DecisionAction.AUTO_ROUTE


def test_group_outside_taxonomy_forced_review() -> None:
    verdict = decide_for(group="Facilities", confidence=1.0)
    assert verdict.action is DecisionAction.FORCED_REVIEW
    assert "'Facilities' is not in the taxonomy" in verdict.notes[0]


def test_force_review_intent_forced_review() -> None:
    verdict = decide_for(
        intent="purchase_request",
        confidence=1.0,
        force_review_intents={"purchase_request"},
    )
    assert verdict.action is DecisionAction.FORCED_REVIEW
    assert verdict.notes == ("intent 'purchase_request' always goes to review",)


def test_other_intent_is_not_forced() -> None:
    verdict = decide_for(confidence=1.0, force_review_intents={"purchase_request"})
    assert verdict.action is DecisionAction.AUTO_ROUTE


def test_forced_review_keeps_group_threshold() -> None:
    verdict = decide_for(group="Hardware", intent="x", force_review_intents={"x"})
    assert verdict.threshold == 0.6


def test_auto_route_note_states_figures() -> None:
    verdict = decide_for(confidence=0.934)
    assert verdict.notes == ("confidence 0.93 is at or above the threshold 0.90",)


def test_review_note_states_figures() -> None:
    verdict = decide_for(confidence=0.5)
    assert verdict.notes == ("confidence 0.50 is below the threshold 0.90",)


def test_policy_version_repeats_for_same_rules(mapping_set: MappingSet) -> None:
    first = policy_version(thresholds=THRESHOLDS, taxonomy=mapping_set.taxonomy)
    second = policy_version(thresholds=THRESHOLDS, taxonomy=mapping_set.taxonomy)
    assert first == second
    assert first.startswith("7+")


def test_policy_version_changes_with_thresholds(mapping_set: MappingSet) -> None:
    stricter = THRESHOLDS.model_copy(update={"default": 0.95})
    before = policy_version(thresholds=THRESHOLDS, taxonomy=mapping_set.taxonomy)
    after = policy_version(thresholds=stricter, taxonomy=mapping_set.taxonomy)
    assert before != after


def test_unversioned_thresholds_are_labelled(mapping_set: MappingSet) -> None:
    version = policy_version(
        thresholds=Thresholds(default=0.9), taxonomy=mapping_set.taxonomy
    )
    assert version.startswith("unversioned+")
