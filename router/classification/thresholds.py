"""Choose per-group confidence thresholds on held-out predictions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Candidate thresholds: 0.50, 0.51, ... 0.99.
THRESHOLD_GRID = tuple(round(0.5 + step / 100, 2) for step in range(50))
# A group needs this many held-out predictions at or above a threshold to trust it.
MIN_PREDICTIONS = 5


@dataclass(frozen=True)
class GroupThreshold:
    """The threshold chosen for one group and what it gives on held-out data."""

    group: str
    threshold: float | None
    precision: float | None
    auto_routed: int
    predicted: int


def choose_thresholds(
    predicted: Sequence[str],
    confidence: Sequence[float],
    truth: Sequence[str],
    *,
    target: float,
    min_predictions: int = MIN_PREDICTIONS,
) -> list[GroupThreshold]:
    """Pick for each predicted group the lowest grid threshold that meets `target`.

    A threshold meets the target when the held-out predictions of the group at or
    above it number at least `min_predictions` and are right in at least `target`
    of cases. A group where no grid threshold does gets threshold None.
    """
    chosen = []
    for group in sorted(set(predicted)):
        rows = [
            (score, answer == group)
            for guess, score, answer in zip(predicted, confidence, truth, strict=True)
            if guess == group
        ]
        result = GroupThreshold(group, None, None, 0, len(rows))
        for threshold in THRESHOLD_GRID:
            routed = [right for score, right in rows if score >= threshold]
            if len(routed) < min_predictions:
                break
            precision = sum(routed) / len(routed)
            if precision >= target:
                result = GroupThreshold(
                    group, threshold, round(precision, 4), len(routed), len(rows)
                )
                break
        chosen.append(result)
    return chosen
