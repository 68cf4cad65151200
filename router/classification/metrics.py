"""Routing metrics: accuracy, macro-F1, per-group figures and auto-route precision."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support


@dataclass(frozen=True)
class GroupFigures:
    """Precision, recall and F1 of one resolver group, with its test count."""

    group: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class RoutingFigures:
    """Held-out figures of one classifier on one test set."""

    tickets: int
    accuracy: float
    macro_f1: float
    groups: list[GroupFigures] = field(default_factory=list)

    def summary(self) -> dict[str, float | int]:
        return {
            "tickets": self.tickets,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
        }


def routing_metrics(truth: Sequence[str], predicted: Sequence[str]) -> RoutingFigures:
    """Compute accuracy, macro-F1 and per-group figures.

    Macro-F1 averages over every group that is true or predicted, as scikit-learn's
    default does, so a group the model invents counts with an F1 of zero.
    """
    if len(truth) == 0:
        return RoutingFigures(tickets=0, accuracy=0.0, macro_f1=0.0)
    groups = sorted(set(truth) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=groups, zero_division=0
    )
    table = [
        GroupFigures(g, float(p), float(r), float(f), int(s))
        for g, p, r, f, s in zip(groups, precision, recall, f1, support, strict=True)
    ]
    macro = f1_score(truth, predicted, labels=groups, average="macro", zero_division=0)
    return RoutingFigures(
        tickets=len(truth),
        accuracy=float(accuracy_score(truth, predicted)),
        macro_f1=float(macro),
        groups=table,
    )


@dataclass(frozen=True)
class AutoRouteFigures:
    """How many tickets a threshold auto-routes and how many of those were right."""

    threshold: float
    share: float
    precision: float | None
    routed: int


def auto_route_figures(
    confidence: Sequence[float], correct: Sequence[bool], *, threshold: float
) -> AutoRouteFigures:
    """Return the auto-route share and precision at a threshold."""
    values = np.asarray(confidence, dtype=float)
    hits = np.asarray(correct, dtype=bool)
    selected = values >= threshold
    routed = int(selected.sum())
    share = routed / len(values) if len(values) else 0.0
    precision = float(hits[selected].mean()) if routed else None
    return AutoRouteFigures(
        threshold=threshold, share=share, precision=precision, routed=routed
    )
