"""Routing metrics, including groups the model never saw in training."""

from __future__ import annotations

import pytest

from router.classification.evaluation import measure_model
from router.classification.metrics import auto_route_figures, routing_metrics
from router.classification.model import RoutingModel
from router.datasets.catalog import Example


def test_unseen_label_scores_zero_f1() -> None:
    figures = routing_metrics(
        ["Hardware", "Access", "Legal"], ["Hardware", "Access", "Hardware"]
    )
    by_group = {g.group: g for g in figures.groups}
    assert by_group["Legal"].f1 == 0.0
    assert by_group["Legal"].support == 1
    assert by_group["Access"].f1 == 1.0


def test_unseen_label_counts_in_macro_f1() -> None:
    figures = routing_metrics(
        ["Hardware", "Access", "Legal"], ["Hardware", "Access", "Hardware"]
    )
    # Hardware has precision 1/2 and recall 1, so F1 2/3. Access has 1 and Legal 0.
    assert figures.macro_f1 == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert figures.accuracy == pytest.approx(2 / 3)
    assert figures.tickets == 3


def test_invented_group_scores_zero_f1() -> None:
    figures = routing_metrics(["Hardware", "Access"], ["Hardware", "Storage"])
    by_group = {g.group: g for g in figures.groups}
    assert by_group["Storage"].f1 == 0.0
    assert by_group["Storage"].support == 0
    assert by_group["Access"].recall == 0.0


def test_empty_truth_gives_zero_figures() -> None:
    figures = routing_metrics([], [])
    assert figures.tickets == 0
    assert figures.accuracy == 0.0
    assert figures.groups == []


def test_measure_model_handles_unseen_label(tiny_model: RoutingModel) -> None:
    test = [
        Example(external_id="row-1", title="printer is jammed", label="Hardware"),
        Example(external_id="row-2", title="password expired", label="Access"),
        Example(external_id="row-3", title="nda needs legal review", label="Legal"),
    ]
    measured = measure_model(tiny_model, test, threshold=0.9)
    by_group = {g.group: g for g in measured.figures.groups}
    assert by_group["Legal"].f1 == 0.0
    assert by_group["Hardware"].recall == 1.0
    assert measured.figures.tickets == 3


def test_auto_route_includes_exact_threshold() -> None:
    figures = auto_route_figures([0.9, 0.89, 0.95], [True, True, False], threshold=0.9)
    assert figures.routed == 2
    assert figures.share == pytest.approx(2 / 3)
    assert figures.precision == pytest.approx(0.5)


def test_auto_route_without_routed_tickets() -> None:
    figures = auto_route_figures([0.2, 0.4], [True, False], threshold=0.9)
    assert figures.routed == 0
    assert figures.share == 0.0
    assert figures.precision is None
