"""The routing model's artefact round trip and its explanations."""

from __future__ import annotations

import pickle
import zlib

import pytest

from router.classification.features import ModelInput
from router.classification.model import RoutingModel

SAMPLE_INPUTS = [
    ModelInput(title="printer and monitor and keyboard are broken"),
    ModelInput(
        title="password expired", description="login fails", issue_type="Incident"
    ),
    ModelInput(title="mailbox quota full", issue_type="Request", priority=2),
    ModelInput(title="please help asap"),
    ModelInput(),
]


def test_round_trip_keeps_predictions(tiny_model: RoutingModel) -> None:
    loaded = RoutingModel.from_bytes(tiny_model.to_bytes())
    expected, _ = tiny_model.predict(SAMPLE_INPUTS)
    actual, _ = loaded.predict(SAMPLE_INPUTS)
    assert actual == expected


def test_round_trip_keeps_card(tiny_model: RoutingModel) -> None:
    loaded = RoutingModel.from_bytes(tiny_model.to_bytes())
    assert loaded.version == tiny_model.version
    assert loaded.card.label_set == tiny_model.card.label_set
    assert loaded.card.data_hash == tiny_model.card.data_hash


def test_round_trip_keeps_explanations(tiny_model: RoutingModel) -> None:
    loaded = RoutingModel.from_bytes(tiny_model.to_bytes())
    expected, expected_rows = tiny_model.predict(SAMPLE_INPUTS[:1])
    actual, actual_rows = loaded.predict(SAMPLE_INPUTS[:1])
    assert loaded.explain(actual_rows, actual[0]) == tiny_model.explain(
        expected_rows, expected[0]
    )


def test_other_artefact_format_is_rejected() -> None:
    blob = zlib.compress(pickle.dumps({"format": 99, "model": None}))
    with pytest.raises(ValueError) as caught:
        RoutingModel.from_bytes(blob)
    message = str(caught.value)
    assert "model artefact format 99 is not supported" in message
    assert "opsroute train" in message


@pytest.mark.parametrize("index", range(len(SAMPLE_INPUTS)))
def test_explanation_matches_top_candidates(
    tiny_model: RoutingModel, index: int
) -> None:
    predictions, rows = tiny_model.predict(SAMPLE_INPUTS)
    prediction = predictions[index]
    chosen, runner_up = tiny_model.explain(rows, prediction)
    assert chosen.group == prediction.candidates[0].group
    assert runner_up is not None
    assert runner_up.group == prediction.candidates[1].group


def test_single_candidate_has_no_runner_up(tiny_model: RoutingModel) -> None:
    predictions, rows = tiny_model.predict(SAMPLE_INPUTS[:1], top=1)
    _, runner_up = tiny_model.explain(rows, predictions[0])
    assert runner_up is None


@pytest.mark.parametrize("index", range(len(SAMPLE_INPUTS)))
def test_explanation_terms_are_words_or_fields(
    tiny_model: RoutingModel, index: int
) -> None:
    predictions, rows = tiny_model.predict(SAMPLE_INPUTS)
    for part in tiny_model.explain(rows, predictions[index]):
        assert part is not None
        for term in part.terms:
            assert term.startswith(("word:", "field:")), term
            assert not term.startswith("char:"), term


@pytest.mark.parametrize("index", range(len(SAMPLE_INPUTS)))
def test_explanation_weights_positive_descending(
    tiny_model: RoutingModel, index: int
) -> None:
    predictions, rows = tiny_model.predict(SAMPLE_INPUTS)
    for part in tiny_model.explain(rows, predictions[index]):
        assert part is not None
        weights = list(part.terms.values())
        assert all(weight > 0 for weight in weights), part.terms
        assert weights == sorted(weights, reverse=True)


def test_explanation_names_distinctive_words(tiny_model: RoutingModel) -> None:
    predictions, rows = tiny_model.predict(SAMPLE_INPUTS[:1])
    chosen, _ = tiny_model.explain(rows, predictions[0])
    assert chosen.group == "Hardware"
    assert "word:printer" in chosen.terms
    assert "word:monitor" in chosen.terms


def test_explanation_lists_field_terms(tiny_model: RoutingModel) -> None:
    inputs = [ModelInput(title="need help with my laptop", issue_type="Incident")]
    predictions, rows = tiny_model.predict(inputs)
    chosen, _ = tiny_model.explain(rows, predictions[0], terms=20)
    assert "field:issue_type=Incident" in chosen.terms


@pytest.mark.parametrize("count", [1, 2])
def test_explanation_respects_term_count(tiny_model: RoutingModel, count: int) -> None:
    predictions, rows = tiny_model.predict(SAMPLE_INPUTS[:1])
    chosen, _ = tiny_model.explain(rows, predictions[0], terms=count)
    assert len(chosen.terms) == count
