"""Linear scoring and confidence calibration, kept as plain arrays for speed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from scipy.special import expit, softmax
from sklearn.linear_model import LogisticRegression


@dataclass
class LinearScorer:
    """Class scores `X @ coef + intercept` of a fitted one-vs-rest linear model."""

    classes: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray

    @classmethod
    def from_estimator(cls, estimator: object) -> LinearScorer:
        """Copy the weights out of a fitted LinearSVC or OneVsRestClassifier."""
        classes: np.ndarray = np.array(list(estimator.classes_), dtype=object)  # type: ignore[attr-defined]
        if hasattr(estimator, "estimators_"):
            coef = np.vstack([e.coef_ for e in estimator.estimators_])
            intercept = np.concatenate([e.intercept_ for e in estimator.estimators_])
        else:
            coef = np.asarray(estimator.coef_)  # type: ignore[attr-defined]
            intercept = np.asarray(estimator.intercept_)  # type: ignore[attr-defined]
        if len(classes) == 2 and coef.shape[0] == 1:
            # A binary linear model keeps one weight row, for the second class.
            coef = np.vstack([-coef[0], coef[0]])
            intercept = np.array([-intercept[0], intercept[0]])
        return cls(
            classes=classes,
            coef=np.ascontiguousarray(coef.T, dtype=np.float32),
            intercept=intercept.astype(np.float32),
        )

    def scores(self, features: sp.csr_matrix) -> np.ndarray:
        """Return one row of class scores per ticket."""
        return np.asarray(features @ self.coef) + self.intercept


def margin_features(scores: np.ndarray) -> np.ndarray:
    """Return the top score and its lead over the runner-up for each row."""
    if scores.shape[1] < 2:
        top = scores[:, 0]
        return np.column_stack([top, np.zeros_like(top)])
    top_two = np.partition(scores, -2, axis=1)[:, -2:]
    top = top_two.max(axis=1)
    second = top_two.min(axis=1)
    return np.column_stack([top, top - second])


@dataclass
class ConfidenceCalibrator:
    """Map decision margins to the probability that the top group is right.

    The map is a logistic regression on the top score and the lead over the runner-up,
    fitted on held-out tickets, so the classifier's own predictions are kept unchanged.
    `temperature` scales the scores into the spread over candidate groups that
    reviewers see.
    """

    weights: np.ndarray
    bias: float
    temperature: float
    fitted_on: int

    @classmethod
    def fit(
        cls, scores: np.ndarray, correct: np.ndarray, labels: np.ndarray
    ) -> ConfidenceCalibrator:
        """Fit on held-out scores, whether each top group was right, and labels."""
        margins = margin_features(scores)
        if len(np.unique(correct)) < 2:
            # Every held-out ticket was right (or every one wrong), so no slope can be
            # fitted. A constant would ignore the margins and give a ticket with no
            # known words the same confidence as a clear one.
            default = cls.uncalibrated()
            default.temperature = _fit_temperature(scores, labels)
            default.fitted_on = len(correct)
            return default
        regression = LogisticRegression(C=10.0).fit(margins, correct)
        return cls(
            weights=regression.coef_[0].astype(np.float64),
            bias=float(regression.intercept_[0]),
            temperature=_fit_temperature(scores, labels),
            fitted_on=len(correct),
        )

    @classmethod
    def uncalibrated(cls) -> ConfidenceCalibrator:
        """Return a conservative map for models with too few held-out tickets."""
        return cls(
            weights=np.array([1.0, 2.0]), bias=-1.0, temperature=1.0, fitted_on=0
        )

    def confidence(self, scores: np.ndarray) -> np.ndarray:
        """Return the calibrated confidence of each row's top group."""
        return expit(margin_features(scores) @ self.weights + self.bias)

    def candidate_probabilities(self, scores: np.ndarray) -> np.ndarray:
        """Return a probability spread over all groups for each row."""
        return softmax(scores * self.temperature, axis=1)


def _fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    rows = np.arange(len(labels))

    def log_loss(temperature: float) -> float:
        probabilities = softmax(scores * temperature, axis=1)
        return float(-np.log(np.clip(probabilities[rows, labels], 1e-12, None)).mean())

    result = minimize_scalar(log_loss, bounds=(0.1, 50.0), method="bounded")
    return float(result.x)


def precision_threshold(
    confidence: np.ndarray,
    correct: np.ndarray,
    *,
    target: float,
    minimum_share: float = 0.0,
) -> float | None:
    """Return the lowest threshold at which auto-routed tickets reach the target."""
    order = np.argsort(-confidence)
    hits = np.cumsum(correct[order])
    counts = np.arange(1, len(order) + 1)
    precision = hits / counts
    meets = np.nonzero((precision >= target) & (counts >= minimum_share * len(order)))[
        0
    ]
    if len(meets) == 0:
        return None
    return float(confidence[order][meets.max()])
