"""Compiled TF-IDF rows must equal scikit-learn's, so small batches route the same."""

from __future__ import annotations

import numpy as np
import pytest

from router.classification.features import COMPILED_BATCH_LIMIT, ModelInput
from router.classification.model import RoutingModel

INPUTS = [
    ModelInput(title="printer jammed again", issue_type="Incident", priority=2),
    ModelInput(title="printer printer printer", description="the printer is jammed"),
    ModelInput(title="qqqq zzzz", issue_type="Never Seen", priority=5),
    ModelInput(title="", description=""),
    ModelInput(title="Passwort zurücksetzen, bitte!", category="Access"),
]


def test_compiled_rows_equal_sklearn(tiny_model: RoutingModel) -> None:
    compiled = tiny_model.features.transform(INPUTS)
    reference = tiny_model.features.reference_transform(INPUTS)

    assert compiled.shape == reference.shape
    assert compiled.nnz == reference.nnz
    assert abs(compiled - reference).max() < 1e-6


def test_empty_text_gives_empty_row(tiny_model: RoutingModel) -> None:
    row = tiny_model.features.transform([ModelInput(title="", description="")])

    assert row.nnz == 0


@pytest.mark.parametrize("count", [1, COMPILED_BATCH_LIMIT, COMPILED_BATCH_LIMIT + 1])
def test_batch_sizes_score_alike(tiny_model: RoutingModel, count: int) -> None:
    inputs = (INPUTS * (count // len(INPUTS) + 1))[:count]

    scores = tiny_model.router.scores(tiny_model.features.transform(inputs))
    expected = tiny_model.router.scores(tiny_model.features.reference_transform(inputs))

    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_pickled_model_rebuilds_lookups(tiny_model: RoutingModel) -> None:
    tiny_model.features.transform(INPUTS[:1])
    loaded = RoutingModel.from_bytes(tiny_model.to_bytes())

    assert loaded.features._compiled is None
    assert (
        abs(
            loaded.features.transform(INPUTS) - tiny_model.features.transform(INPUTS)
        ).max()
        < 1e-6
    )
