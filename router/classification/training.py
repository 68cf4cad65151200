"""Train the routing model: split, pick the regularization, calibrate, refit."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
import scipy.sparse as sp
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from router.classification.features import FeatureBuilder, FeatureParams, ModelInput
from router.classification.metrics import routing_metrics
from router.classification.model import ModelCard, RoutingModel
from router.classification.scoring import (
    ConfidenceCalibrator,
    LinearScorer,
    precision_threshold,
)

logger = logging.getLogger(__name__)


class TrainingError(ValueError):
    """The examples cannot train a model; the message names what to add."""


@dataclass(frozen=True)
class TrainingParams:
    """Everything that shapes a trained model; part of its version hash."""

    features: FeatureParams = field(default_factory=FeatureParams)
    # (C, class_weight) pairs tried on the calibration slice; the best macro-F1 wins.
    candidates: tuple[tuple[float, str | None], ...] = (
        (1.0, None),
        (0.5, None),
        (0.5, "balanced"),
        (0.25, "balanced"),
    )
    # Sets up to this size pick a candidate and calibrate on k-fold held-out scores.
    cross_validate_below: int = 20_000
    folds: int = 5
    test_share: float = 0.2
    calibration_share: float = 0.15
    seed: int = 0
    min_examples_per_group: int = 2
    min_calibration_rows: int = 30
    target_precision: float = 0.95
    # The suggested threshold must beat the target by this much on held-out rows.
    precision_margin: float = 0.01
    jobs: int = 2
    # At most this many examples train the urgency model.
    urgency_max_rows: int = 30_000


@dataclass(frozen=True)
class Split:
    """Indices of the training and held-out test examples, and the labels left out."""

    train: np.ndarray
    test: np.ndarray
    skipped_labels: dict[str, int]


def split_examples(labels: Sequence[str], *, params: TrainingParams) -> Split:
    """Split stratified 80/20 like the reference recipe, after dropping rare groups."""
    counts = Counter(labels)
    skipped = {g: n for g, n in counts.items() if n < params.min_examples_per_group}
    kept = np.array([i for i, label in enumerate(labels) if label not in skipped])
    if len({labels[i] for i in kept}) < 2:
        raise TrainingError(
            "training needs at least two groups with "
            f"{params.min_examples_per_group} or more examples each; found "
            f"{dict(counts.most_common(5))}. Add examples for more groups."
        )
    kept_labels = np.array([labels[i] for i in kept], dtype=object)
    train, test = _split(kept, kept_labels, share=params.test_share, seed=params.seed)
    return Split(train=train, test=test, skipped_labels=skipped)


def train_routing_model(
    inputs: Sequence[ModelInput],
    labels: Sequence[str],
    *,
    dataset: str,
    params: TrainingParams | None = None,
    urgency_labels: Sequence[int | None] | None = None,
) -> RoutingModel:
    """Train on every example given; callers hold out their own test set.

    Raises:
        TrainingError: fewer than two groups have enough examples, or no text
            has words.
    """
    params = params or TrainingParams()
    started = time.perf_counter()
    version = model_version(dataset, inputs, labels, params)
    counts = Counter(labels)
    keep = [
        i
        for i, label in enumerate(labels)
        if counts[label] >= params.min_examples_per_group
    ]
    inputs = [inputs[i] for i in keep]
    y = np.array([labels[i] for i in keep], dtype=object)
    if len(set(y)) < 2:
        raise TrainingError(
            "training needs at least two groups with "
            f"{params.min_examples_per_group} or more examples each; found "
            f"{dict(counts.most_common(5))}. Add examples for more groups."
        )

    builder = FeatureBuilder(params.features)
    try:
        matrix = builder.fit_transform(inputs)
    except ValueError as error:
        raise TrainingError(
            f"no words found in the training texts ({error}); check the text columns."
        ) from error

    chosen, calibrator, threshold, selection = _select_and_calibrate(matrix, y, params)
    final = _fit(matrix, y, chosen, params)
    urgency = _fit_urgency(builder, matrix, urgency_labels, keep, params)

    card = ModelCard(
        version=version,
        dataset=dataset,
        label_set=sorted(set(y)),
        metrics={"selection": selection, "skipped_labels": _skipped(counts, params)},
        params=_params_dict(params, chosen),
        data_hash=data_hash(inputs, list(y)),
        created_at=datetime.now(UTC),
        suggested_threshold=threshold,
    )
    logger.info(
        "Trained model %s on %d examples, %d groups in %.1f s",
        card.version,
        len(y),
        len(card.label_set),
        time.perf_counter() - started,
    )
    return RoutingModel(
        card, builder, LinearScorer.from_estimator(final), calibrator, urgency
    )


def _select_and_calibrate(
    matrix: sp.csr_matrix, y: np.ndarray, params: TrainingParams
) -> tuple[tuple[float, str | None], ConfidenceCalibrator, float | None, dict]:
    held_out = _held_out_folds(y, params)
    if held_out is None:
        logger.warning(
            "Too few examples to hold any out for calibration (need %d); "
            "confidence is uncalibrated",
            params.min_calibration_rows,
        )
        return (
            params.candidates[0],
            ConfidenceCalibrator.uncalibrated(),
            None,
            {"calibration": "uncalibrated"},
        )

    # Large sets calibrate well on one slice, and each candidate costs a full fit there.
    candidates = (
        params.candidates
        if len(y) <= params.cross_validate_below
        else params.candidates[:1]
    )
    classes = np.array(sorted(set(y)), dtype=object)
    calibration_rows = np.concatenate([rows for _, rows in held_out])
    truth = y[calibration_rows]
    best: tuple[float, tuple[float, str | None], np.ndarray] | None = None
    tried = []
    for candidate in candidates:
        scores = _held_out_scores(matrix, y, held_out, classes, candidate, params)
        predicted = classes[scores.argmax(axis=1)]
        # Candidates are ranked by the mean of the per-fold macro-F1, as a grid
        # search over folds does. Pooling the folds first favoured the weakest
        # regularization on small sets.
        fold_f1 = _per_fold_macro_f1(truth, predicted, held_out)
        figures = routing_metrics(list(truth), list(predicted))
        tried.append(
            {
                "C": candidate[0],
                "class_weight": candidate[1],
                **figures.summary(),
                "fold_macro_f1": round(fold_f1, 4),
            }
        )
        if best is None or fold_f1 > best[0]:
            best = (fold_f1, candidate, scores)
    if best is None:
        raise TrainingError("no (C, class_weight) candidates were given to try")
    _, chosen, scores = best

    correct = (classes[scores.argmax(axis=1)] == truth).astype(int)
    label_index = np.searchsorted(classes, truth)
    calibrator = ConfidenceCalibrator.fit(scores, correct, label_index)
    threshold = precision_threshold(
        calibrator.confidence(scores),
        correct,
        target=params.target_precision + params.precision_margin,
    )
    selection: dict[str, object] = {
        "calibration_rows": len(calibration_rows),
        "folds": len(held_out),
        "tried": tried,
    }
    return chosen, calibrator, threshold, selection


def _held_out_folds(
    y: np.ndarray, params: TrainingParams
) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Return (fit rows, held-out rows) pairs: k folds on small sets, else one slice."""
    rows = np.arange(len(y))
    if len(y) <= params.cross_validate_below:
        folds = min(params.folds, int(min(Counter(y).values())))
        if folds >= 2 and len(y) >= params.min_calibration_rows:
            splitter = StratifiedKFold(
                n_splits=folds, shuffle=True, random_state=params.seed
            )
            return [(fit, held) for fit, held in splitter.split(rows, y)]
    fit, held = _split(rows, y, share=params.calibration_share, seed=params.seed)
    if len(held) < params.min_calibration_rows or len(set(y[fit])) < 2:
        return None
    return [(fit, held)]


def _per_fold_macro_f1(
    truth: np.ndarray,
    predicted: np.ndarray,
    held_out: list[tuple[np.ndarray, np.ndarray]],
) -> float:
    scores = []
    start = 0
    for _, rows in held_out:
        end = start + len(rows)
        fold = routing_metrics(list(truth[start:end]), list(predicted[start:end]))
        scores.append(fold.macro_f1)
        start = end
    return float(np.mean(scores))


def _held_out_scores(
    matrix: sp.csr_matrix,
    y: np.ndarray,
    held_out: list[tuple[np.ndarray, np.ndarray]],
    classes: np.ndarray,
    candidate: tuple[float, str | None],
    params: TrainingParams,
) -> np.ndarray:
    """Score each held-out row with a model that never saw it, over all classes."""
    pieces = []
    for fit_rows, held_rows in held_out:
        scorer = LinearScorer.from_estimator(
            _fit(matrix[fit_rows], y[fit_rows], candidate, params)
        )
        scores = np.full((len(held_rows), len(classes)), -10.0, dtype=np.float32)
        columns = np.searchsorted(classes, scorer.classes)
        scores[:, columns] = scorer.scores(matrix[held_rows])
        pieces.append(scores)
    return np.vstack(pieces)


def _fit(
    matrix: sp.csr_matrix,
    y: np.ndarray,
    candidate: tuple[float, str | None],
    params: TrainingParams,
) -> object:
    c_value, class_weight = candidate
    estimator = LinearSVC(C=c_value, class_weight=class_weight)
    # A daemon process (the service trains in one) cannot start joblib's workers,
    # and joblib would warn on every fit before it falls back to one job.
    in_daemon = multiprocessing.current_process().daemon
    if len(set(y)) > 2 and params.jobs > 1 and class_weight is None and not in_daemon:
        # One-vs-rest in parallel gives the same weights as LinearSVC's own loop.
        # Balanced class weights are not the same: each binary fit would balance
        # one group against the rest instead of across all groups.
        return OneVsRestClassifier(estimator, n_jobs=params.jobs).fit(matrix, y)
    return estimator.fit(matrix, y)


def _fit_urgency(
    builder: FeatureBuilder,
    matrix: sp.csr_matrix,
    urgency_labels: Sequence[int | None] | None,
    keep: list[int],
    params: TrainingParams,
) -> LinearScorer | None:
    if urgency_labels is None:
        return None
    labels = [urgency_labels[i] for i in keep]
    rows = np.array([i for i, value in enumerate(labels) if value is not None])
    if len(rows) < 0.5 * len(labels) or len({labels[i] for i in rows}) < 2:
        return None
    if len(rows) > params.urgency_max_rows:
        # A sample keeps the second model's fit short; urgency needs less data.
        sampler = np.random.default_rng(params.seed)
        sample = sampler.choice(rows, size=params.urgency_max_rows, replace=False)
        rows = np.sort(sample)
    # Urgency is learned from priority, so the priority field itself is masked out.
    masked = matrix[rows].tocsc(copy=True)
    for column in _priority_columns(builder):
        masked.data[masked.indptr[column] : masked.indptr[column + 1]] = 0.0
    masked = masked.tocsr()
    masked.eliminate_zeros()
    y = np.array([str(labels[i]) for i in rows], dtype=object)
    return LinearScorer.from_estimator(_fit(masked, y, (0.5, None), params))


def _priority_columns(builder: FeatureBuilder) -> list[int]:
    offset = builder.block_sizes[0] + builder.block_sizes[1]
    return [
        offset + index
        for token, index in builder.fields.vocabulary_.items()
        if token.startswith("priority=")
    ]


def _split(
    rows: np.ndarray, labels: np.ndarray, *, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    try:
        first, second = train_test_split(
            rows, test_size=share, stratify=labels, random_state=seed
        )
    except ValueError:
        # Too few examples per group to stratify; a plain shuffled split still works.
        first, second = train_test_split(rows, test_size=share, random_state=seed)
    return np.asarray(first), np.asarray(second)


def data_hash(inputs: Sequence[ModelInput], labels: Sequence[str]) -> str:
    """Return a SHA-256 over the model inputs and labels, in order."""
    digest = hashlib.sha256()
    for item, label in zip(inputs, labels, strict=True):
        fields = (
            item.text,
            item.issue_type,
            item.category,
            item.subcategory,
            item.priority,
        )
        digest.update(repr((fields, label)).encode())
    return digest.hexdigest()


def model_version(
    dataset: str,
    inputs: Sequence[ModelInput],
    labels: Sequence[str],
    params: TrainingParams,
) -> str:
    """Return `<dataset>-<hash>`, where the hash covers the data and the parameters."""
    digest = hashlib.sha256(data_hash(inputs, labels).encode())
    digest.update(repr(asdict(params)).encode())
    return f"{dataset}-{digest.hexdigest()[:12]}"


def _params_dict(params: TrainingParams, chosen: tuple[float, str | None]) -> dict:
    values = asdict(params)
    values["chosen"] = {"C": chosen[0], "class_weight": chosen[1]}
    return values


def _skipped(counts: Counter[str], params: TrainingParams) -> dict[str, int]:
    return {g: n for g, n in counts.items() if n < params.min_examples_per_group}
