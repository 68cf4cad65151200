"""Hold out 20% of a labelled set, train on the rest, and measure both models."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from router.classification.features import input_from_example
from router.classification.metrics import (
    AutoRouteFigures,
    RoutingFigures,
    auto_route_figures,
    routing_metrics,
)
from router.classification.model import RoutingModel
from router.classification.reference import reference_predictions
from router.classification.training import (
    TrainingParams,
    split_examples,
    train_routing_model,
)
from router.datasets.catalog import Example


def urgency_of(priority: int | None) -> int | None:
    """Map priority 1..5 to urgency 1..3 (1 and 2 high, 3 medium, 4 and 5 low)."""
    if priority is None:
        return None
    return {1: 1, 2: 1, 3: 2, 4: 3, 5: 3}[priority]


@dataclass(frozen=True)
class HeldOut:
    """A stratified split of labelled examples."""

    train: list[Example]
    test: list[Example]
    skipped_labels: dict[str, int]


def hold_out(examples: Sequence[Example], *, params: TrainingParams) -> HeldOut:
    """Split 80/20, stratified, seed 0, after dropping groups with a single example."""
    split = split_examples([example.label for example in examples], params=params)
    return HeldOut(
        train=[examples[i] for i in split.train],
        test=[examples[i] for i in split.test],
        skipped_labels=split.skipped_labels,
    )


def train_on(
    examples: Sequence[Example], *, dataset: str, params: TrainingParams
) -> RoutingModel:
    """Train the routing model (and urgency, where priorities exist) on examples."""
    return train_routing_model(
        [input_from_example(example) for example in examples],
        [example.label for example in examples],
        dataset=dataset,
        params=params,
        urgency_labels=[urgency_of(example.priority) for example in examples],
    )


@dataclass(frozen=True)
class ModelFigures:
    """Held-out figures of one model."""

    name: str
    figures: RoutingFigures
    auto_route: AutoRouteFigures | None
    seconds: float


def measure_model(
    model: RoutingModel, test: Sequence[Example], *, threshold: float
) -> ModelFigures:
    """Measure accuracy, macro-F1 and auto-routing of our model on the test examples."""
    started = time.perf_counter()
    predictions, _ = model.predict([input_from_example(example) for example in test])
    truth = [example.label for example in test]
    predicted = [p.group for p in predictions]
    correct = [p == t for p, t in zip(predicted, truth, strict=True)]
    auto = auto_route_figures(
        [p.confidence for p in predictions], correct, threshold=threshold
    )
    return ModelFigures(
        name="opsroute",
        figures=routing_metrics(truth, predicted),
        auto_route=auto,
        seconds=time.perf_counter() - started,
    )


def measure_reference(
    train: Sequence[Example], test: Sequence[Example]
) -> ModelFigures:
    """Train and measure the reference recipe on the same split."""
    started = time.perf_counter()
    predicted = reference_predictions(
        [input_from_example(e).text for e in train],
        [e.label for e in train],
        [input_from_example(e).text for e in test],
    )
    figures = routing_metrics([e.label for e in test], predicted)
    return ModelFigures(
        name="reference",
        figures=figures,
        auto_route=None,
        seconds=time.perf_counter() - started,
    )


def figures_json(measured: ModelFigures) -> dict[str, object]:
    """Return a model's held-out figures as the plain data stored on its card."""
    data: dict[str, object] = {
        "accuracy": round(measured.figures.accuracy, 4),
        "macro_f1": round(measured.figures.macro_f1, 4),
        "groups": {
            g.group: {
                "precision": round(g.precision, 4),
                "recall": round(g.recall, 4),
                "f1": round(g.f1, 4),
                "support": g.support,
            }
            for g in measured.figures.groups
        },
    }
    if measured.auto_route is not None:
        data["threshold"] = measured.auto_route.threshold
        data["auto_route_share"] = round(measured.auto_route.share, 4)
        data["auto_route_precision"] = (
            None
            if measured.auto_route.precision is None
            else round(measured.auto_route.precision, 4)
        )
    return data
