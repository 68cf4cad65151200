"""Intents listed in thresholds.yaml always go to review through the router."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from shutil import copytree

from router.classification.model import RoutingModel
from router.mapping import MappingSet, load_mappings, validate_mappings
from router.mapping.loader import default_mappings_dir
from router.routing import TicketRouter
from router.schemas import DecisionAction, Ticket


def _router(
    model: RoutingModel, mappings: MappingSet, intents: list[str]
) -> TicketRouter:
    thresholds = mappings.thresholds.model_copy(
        update={"default": 0.0, "force_review_intents": intents}
    )
    return TicketRouter(
        model=model, mappings=dataclasses.replace(mappings, thresholds=thresholds)
    )


def _printer_ticket() -> Ticket:
    return Ticket(
        source_system="servicenow",
        external_id="INC0020001",
        title="printer on floor two is jammed",
    )


def test_listed_intent_is_forced_review(
    routing_model: RoutingModel, shipped_mappings: MappingSet
) -> None:
    ticket = _printer_ticket()
    intent, _ = shipped_mappings.match_intent(ticket)
    router = _router(routing_model, shipped_mappings, [intent])

    decision = router.route([ticket])[0]

    assert decision.action is DecisionAction.FORCED_REVIEW
    assert f"intent {intent!r} always goes to review" in decision.explanation.notes


def test_other_intent_still_auto_routes(
    routing_model: RoutingModel, shipped_mappings: MappingSet
) -> None:
    router = _router(routing_model, shipped_mappings, ["security"])

    decision = router.route([_printer_ticket()])[0]

    assert decision.action is DecisionAction.AUTO_ROUTE


def test_unknown_forced_intent_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    copytree(str(default_mappings_dir()), folder)
    thresholds = folder / "thresholds.yaml"
    text = thresholds.read_text(encoding="utf-8")
    thresholds.write_text(
        text.replace("force_review_intents: []", "force_review_intents: [refunds]"),
        encoding="utf-8",
    )

    problems = validate_mappings(str(folder))

    assert [p.key_path for p in problems] == ["force_review_intents[0]"]
    assert problems[0].value == "refunds"
    assert "is not an intent in taxonomy.yaml" in problems[0].message


def test_shipped_thresholds_force_nothing() -> None:
    assert load_mappings().thresholds.force_review_intents == []
