"""The routing model: features, linear scores, calibrated confidence, explanations."""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import scipy.sparse as sp

from router.classification.features import FeatureBuilder, ModelInput
from router.classification.scoring import ConfidenceCalibrator, LinearScorer
from router.schemas import Candidate, GroupExplanation

ARTEFACT_FORMAT = 1


@dataclass
class ModelCard:
    """Training data, parameters and held-out figures of a stored model."""

    version: str
    dataset: str
    label_set: list[str]
    metrics: dict[str, Any]
    params: dict[str, Any]
    data_hash: str
    created_at: datetime
    suggested_threshold: float | None = None


@dataclass(frozen=True, slots=True)
class Prediction:
    """Model output for one ticket, before any policy is applied."""

    group: str
    confidence: float
    candidates: tuple[Candidate, ...]
    urgency: int | None
    row: int


@dataclass
class RoutingModel:
    """A trained resolver-group classifier with an optional urgency classifier."""

    card: ModelCard
    features: FeatureBuilder
    router: LinearScorer
    calibrator: ConfidenceCalibrator
    urgency: LinearScorer | None = None
    _names: np.ndarray | None = field(default=None, repr=False)
    _column_of: dict[str, int] | None = field(default=None, repr=False)
    _readable_mask: np.ndarray | None = field(default=None, repr=False)

    @property
    def version(self) -> str:
        return self.card.version

    def vectorize(self, inputs: Sequence[ModelInput]) -> sp.csr_matrix:
        """Return the feature rows of a batch of inputs."""
        return self.features.transform(inputs)

    def predict(
        self, inputs: Sequence[ModelInput], *, top: int = 3
    ) -> tuple[list[Prediction], sp.csr_matrix]:
        """Predict the group, confidence, candidates and urgency of each input.

        Returns:
            The predictions and the feature rows, which `explain` takes back.
        """
        rows = self.vectorize(inputs)
        scores = self.router.scores(rows)
        confidence = self.calibrator.confidence(scores)
        spread = self.calibrator.candidate_probabilities(scores)
        count = min(top, scores.shape[1])
        best = np.argsort(-scores, axis=1)[:, :count]
        urgency = self._predict_urgency(rows)
        classes = self.router.classes
        predictions = []
        for index in range(len(inputs)):
            order = best[index]
            candidates = tuple(
                Candidate(group=str(classes[c]), probability=float(spread[index, c]))
                for c in order
            )
            predictions.append(
                Prediction(
                    group=str(classes[order[0]]),
                    confidence=float(confidence[index]),
                    candidates=candidates,
                    urgency=None if urgency is None else int(urgency[index]),
                    row=index,
                )
            )
        return predictions, rows

    def explain(
        self, rows: sp.csr_matrix, prediction: Prediction, *, terms: int = 5
    ) -> tuple[GroupExplanation, GroupExplanation | None]:
        """Return the words and fields that weighed most for the top two groups."""
        begin, end = rows.indptr[prediction.row], rows.indptr[prediction.row + 1]
        indices = rows.indices[begin:end]
        values = rows.data[begin:end]
        readable = self._readable()[indices]
        explained = []
        for candidate in prediction.candidates[:2]:
            column = self._columns()[candidate.group]
            weights = values * self.router.coef[indices, column]
            score = float(weights.sum() + self.router.intercept[column])
            listed = _top_terms(
                self.feature_names(), indices[readable], weights[readable], terms
            )
            explained.append(
                GroupExplanation(group=candidate.group, score=score, terms=listed)
            )
        runner_up = explained[1] if len(explained) > 1 else None
        return explained[0], runner_up

    def feature_names(self) -> np.ndarray:
        if self._names is None:
            self._names = self.features.feature_names()
        return self._names

    def _columns(self) -> dict[str, int]:
        if self._column_of is None:
            self._column_of = {str(g): i for i, g in enumerate(self.router.classes)}
        return self._column_of

    def _readable(self) -> np.ndarray:
        # Character n-grams score well but read poorly, so explanations list only words
        # and fields.
        if self._readable_mask is None:
            words, chars, fields = self.features.block_sizes
            mask = np.ones(words + chars + fields, dtype=bool)
            mask[words : words + chars] = False
            self._readable_mask = mask
        return self._readable_mask

    def _predict_urgency(self, rows: sp.csr_matrix) -> np.ndarray | None:
        if self.urgency is None:
            return None
        scores = self.urgency.scores(rows)
        return self.urgency.classes[scores.argmax(axis=1)].astype(int)

    def to_bytes(self) -> bytes:
        """Serialize the model for the store (pickle, compressed)."""
        state = {"format": ARTEFACT_FORMAT, "model": self._without_cache()}
        return zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)

    @classmethod
    def from_bytes(cls, blob: bytes) -> RoutingModel:
        """Load a model serialized by `to_bytes`.

        Raises:
            ValueError: when the artefact has another format version.
        """
        # NOTE: Artefacts are pickles, so load only those from this deployment's store.
        state = pickle.loads(zlib.decompress(blob))  # noqa: S301
        if state.get("format") != ARTEFACT_FORMAT:
            raise ValueError(
                f"model artefact format {state.get('format')!r} is not supported "
                f"(expected {ARTEFACT_FORMAT}); retrain with `opsroute train`."
            )
        model: RoutingModel = state["model"]
        return model

    def _without_cache(self) -> RoutingModel:
        return RoutingModel(
            self.card, self.features, self.router, self.calibrator, self.urgency
        )


def _top_terms(
    names: np.ndarray, indices: np.ndarray, weights: np.ndarray, count: int
) -> dict[str, float]:
    best = np.argsort(-weights)[:count]
    return {
        str(names[indices[i]]): round(float(weights[i]), 4)
        for i in best
        if weights[i] > 0
    }
