"""The parallel one-vs-rest fit must train the same model as LinearSVC itself."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from router.classification.features import FeatureBuilder, ModelInput
from router.classification.scoring import LinearScorer
from router.classification.training import TrainingParams, _fit

TEXTS = {
    "storage": [
        "disk full on node",
        "quota exceeded for share",
        "backup volume is full",
    ],
    "access": ["grant access to repo", "password reset needed", "add me to the group"],
    "network": ["vpn drops every hour", "wifi slow in office", "dns lookup fails"],
    "hardware": ["laptop screen cracked"],
}


def _training_set() -> tuple[object, np.ndarray]:
    inputs = []
    labels = []
    for group, texts in TEXTS.items():
        for repeat in range(4):
            for text in texts:
                inputs.append(ModelInput(title=f"{text} {repeat}"))
                labels.append(group)
    builder = FeatureBuilder()
    return builder.fit_transform(inputs), np.array(labels, dtype=object)


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_parallel_fit_matches_linear_svc(class_weight: str | None) -> None:
    matrix, labels = _training_set()
    params = TrainingParams(jobs=2)

    ours = LinearScorer.from_estimator(
        _fit(matrix, labels, (0.5, class_weight), params)
    )
    direct = LinearScorer.from_estimator(
        LinearSVC(C=0.5, class_weight=class_weight).fit(matrix, labels)
    )

    assert list(ours.classes) == list(direct.classes)
    np.testing.assert_allclose(ours.coef, direct.coef, atol=1e-4)
    np.testing.assert_allclose(ours.intercept, direct.intercept, atol=1e-4)
