"""The ticket router: records of each system in, ordered and audited decisions out."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from router.classification.model import RoutingModel
from router.demo.payloads import DemoRow, to_jira_issue, to_system_record
from router.mapping import MappingSet, Thresholds
from router.policy.service import policy_version
from router.routing import TicketRouter
from router.schemas import Decision, DecisionAction, Ticket

TicketBuilder = Callable[..., Ticket]

SYSTEMS = ("servicenow", "jira", "salesforce")
PRINTER_ROW = DemoRow(
    external_id="HELP-7",
    title="printer on floor two is jammed",
    description="the printer shows a paper jam",
    sequence=7,
)
# Rows of four groups, in the order they are sent, with the group each belongs to.
MIXED_ROWS = (
    (DemoRow(external_id="HELP-11", title="cannot login, password expired"), "Access"),
    (
        DemoRow(external_id="HELP-12", title="printer on floor two is jammed"),
        "Hardware",
    ),
    (DemoRow(external_id="HELP-13", title="mailbox quota exceeded"), "Storage"),
    (
        DemoRow(external_id="HELP-14", title="need a quote from the supplier"),
        "Purchase",
    ),
)
# One clear title for each of two groups, whatever group the borderline title gets.
CLEAR_TITLES = {
    "Hardware": "printer on floor two is jammed",
    "Purchase": "need a quote from the supplier",
}
# The model is unsure about this title, so its confidence is well inside (0, 1).
BORDERLINE_TITLE = "invoice for a new monitor"


def route_one(router: TicketRouter, make_ticket: TicketBuilder, title: str) -> Decision:
    return router.route([make_ticket(title=title, description="")])[0]


def with_thresholds(mappings: MappingSet, thresholds: Thresholds) -> MappingSet:
    return dataclasses.replace(mappings, thresholds=thresholds)


def route_borderline(
    model: RoutingModel, mappings: MappingSet, make_ticket: TicketBuilder
) -> Decision:
    """Route the borderline title with the shipped thresholds."""
    decision = route_one(
        TicketRouter(model=model, mappings=mappings), make_ticket, BORDERLINE_TITLE
    )
    # A threshold just above the confidence must still be a valid probability.
    assert decision.confidence > 0.0
    assert decision.confidence < 1.0
    return decision


@pytest.mark.parametrize("system", SYSTEMS)
def test_route_records_decides_each_system(
    ticket_router: TicketRouter,
    routing_model: RoutingModel,
    shipped_mappings: MappingSet,
    system: str,
) -> None:
    [(ticket, decision)] = ticket_router.route_records(
        system, [to_system_record(system, PRINTER_ROW)]
    )
    expected_policy = policy_version(
        thresholds=shipped_mappings.thresholds,
        taxonomy=shipped_mappings.taxonomy,
        policies=shipped_mappings.policies,
        settings=shipped_mappings.policy_settings,
        escalations=shipped_mappings.escalations,
    )
    assert ticket.source_system == system
    assert decision.ticket_key == ticket.key
    assert decision.resolver_group == "Hardware"
    assert decision.intent == "hardware_fault"
    assert decision.model_version == routing_model.version
    assert decision.policy_version == expected_policy
    assert decision.threshold == shipped_mappings.thresholds.default


@pytest.mark.parametrize("system", SYSTEMS)
def test_decisions_keep_record_order(ticket_router: TicketRouter, system: str) -> None:
    records = [to_system_record(system, row) for row, _ in MIXED_ROWS]
    routed = ticket_router.route_records(system, records)
    assert [d.ticket_key for _, d in routed] == [t.key for t, _ in routed]
    assert [d.resolver_group for _, d in routed] == [g for _, g in MIXED_ROWS]
    assert len({t.key for t, _ in routed}) == len(MIXED_ROWS)


def test_route_keeps_ticket_order(
    ticket_router: TicketRouter, make_ticket: TicketBuilder
) -> None:
    tickets = [
        make_ticket(external_id=f"INC00200{n}", title=row.title)
        for n, (row, _) in enumerate(MIXED_ROWS)
    ]
    decisions = ticket_router.route(tickets)
    assert [d.ticket_key for d in decisions] == [t.key for t in tickets]


def test_empty_batch_returns_no_decisions(ticket_router: TicketRouter) -> None:
    assert ticket_router.route([]) == []


def test_route_stamps_given_decision_time(
    ticket_router: TicketRouter, make_ticket: TicketBuilder
) -> None:
    now = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    decisions = ticket_router.route([make_ticket(), make_ticket()], now=now)
    assert [d.decided_at for d in decisions] == [now, now]


def test_unknown_system_is_rejected(ticket_router: TicketRouter) -> None:
    with pytest.raises(LookupError) as caught:
        ticket_router.route_records("zendesk", [{}])
    assert "no mapping for system 'zendesk'" in str(caught.value)


def test_confidence_at_threshold_auto_routes(
    routing_model: RoutingModel,
    shipped_mappings: MappingSet,
    make_ticket: TicketBuilder,
) -> None:
    confidence = route_borderline(
        routing_model, shipped_mappings, make_ticket
    ).confidence
    exact = with_thresholds(shipped_mappings, Thresholds(default=confidence))
    router = TicketRouter(model=routing_model, mappings=exact)
    decision = route_one(router, make_ticket, BORDERLINE_TITLE)
    assert decision.action is DecisionAction.AUTO_ROUTE
    assert decision.threshold == decision.confidence


def test_confidence_below_threshold_goes_review(
    routing_model: RoutingModel,
    shipped_mappings: MappingSet,
    make_ticket: TicketBuilder,
) -> None:
    confidence = route_borderline(
        routing_model, shipped_mappings, make_ticket
    ).confidence
    above = with_thresholds(
        shipped_mappings, Thresholds(default=math.nextafter(confidence, 1.0))
    )
    router = TicketRouter(model=routing_model, mappings=above)
    decision = route_one(router, make_ticket, BORDERLINE_TITLE)
    assert decision.action is DecisionAction.REVIEW


def test_group_override_changes_outcome(
    routing_model: RoutingModel,
    shipped_mappings: MappingSet,
    make_ticket: TicketBuilder,
) -> None:
    first = route_borderline(routing_model, shipped_mappings, make_ticket)
    stricter = math.nextafter(first.confidence, 1.0)
    thresholds = Thresholds(default=0.0, groups={first.resolver_group: stricter})
    router = TicketRouter(
        model=routing_model, mappings=with_thresholds(shipped_mappings, thresholds)
    )
    borderline = route_one(router, make_ticket, BORDERLINE_TITLE)
    other_title = next(
        title for group, title in CLEAR_TITLES.items() if group != first.resolver_group
    )
    other = route_one(router, make_ticket, other_title)
    assert borderline.action is DecisionAction.REVIEW
    assert borderline.threshold == stricter
    assert other.resolver_group != first.resolver_group
    assert other.action is DecisionAction.AUTO_ROUTE


def test_clear_ticket_auto_routes_by_default(
    ticket_router: TicketRouter,
    shipped_mappings: MappingSet,
    make_ticket: TicketBuilder,
) -> None:
    decision = route_one(ticket_router, make_ticket, "printer on floor two is jammed")
    threshold = shipped_mappings.thresholds.default
    assert decision.action is DecisionAction.AUTO_ROUTE
    assert decision.explanation.notes[0].endswith(
        f"at or above the threshold {threshold:.2f}"
    )


def test_vague_ticket_goes_review_by_default(
    ticket_router: TicketRouter, make_ticket: TicketBuilder
) -> None:
    decision = route_one(ticket_router, make_ticket, "please help asap")
    assert decision.action is DecisionAction.REVIEW


def test_ticket_without_text_forced_review(
    ticket_router: TicketRouter, make_ticket: TicketBuilder
) -> None:
    decision = ticket_router.route([make_ticket(title="", description=" ")])[0]
    assert decision.action is DecisionAction.FORCED_REVIEW
    assert decision.explanation.notes == ["ticket has no text"]


def test_group_outside_taxonomy_forced_review(
    ticket_router: TicketRouter, make_ticket: TicketBuilder
) -> None:
    decision = route_one(ticket_router, make_ticket, "parking barrier stuck again")
    assert decision.resolver_group == "Facilities"
    assert decision.action is DecisionAction.FORCED_REVIEW


@pytest.mark.parametrize("count", [1, 2, 5])
def test_review_candidates_sets_candidate_count(
    routing_model: RoutingModel,
    shipped_mappings: MappingSet,
    make_ticket: TicketBuilder,
    count: int,
) -> None:
    thresholds = shipped_mappings.thresholds.model_copy(
        update={"review_candidates": count}
    )
    router = TicketRouter(
        model=routing_model, mappings=with_thresholds(shipped_mappings, thresholds)
    )
    decision = route_one(router, make_ticket, BORDERLINE_TITLE)
    assert len(decision.candidates) == count


def test_explanation_follows_candidates(
    ticket_router: TicketRouter, make_ticket: TicketBuilder
) -> None:
    decision = route_one(ticket_router, make_ticket, BORDERLINE_TITLE)
    assert decision.explanation.chosen.group == decision.candidates[0].group
    assert decision.explanation.runner_up is not None
    assert decision.explanation.runner_up.group == decision.candidates[1].group


def test_decision_lists_intent_matches(
    ticket_router: TicketRouter, make_ticket: TicketBuilder
) -> None:
    decision = route_one(ticket_router, make_ticket, "printer on floor two is jammed")
    assert decision.explanation.intent_matches == ["printer"]


def test_router_ignores_jira_key_and_project(ticket_router: TicketRouter) -> None:
    title = "printer on floor two is jammed"
    hdfs = to_jira_issue(DemoRow(external_id="HDFS-1", title=title))
    yarn = to_jira_issue(DemoRow(external_id="YARN-1", title=title))
    yarn["fields"]["components"] = [{"name": "Hardware"}]
    (_, first), (_, second) = ticket_router.route_records("jira", [hdfs, yarn])
    assert first.ticket_key == "jira:HDFS-1"
    assert second.ticket_key == "jira:YARN-1"
    assert first.resolver_group == second.resolver_group
    assert first.confidence == second.confidence
    assert first.candidates == second.candidates
    assert first.explanation == second.explanation
