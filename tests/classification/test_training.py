"""Training the routing model on small hand-written sets, and what it predicts."""

from __future__ import annotations

import pytest

from router.classification.evaluation import hold_out
from router.classification.features import ModelInput
from router.classification.model import RoutingModel
from router.classification.training import (
    TrainingError,
    TrainingParams,
    model_version,
    split_examples,
    train_routing_model,
)
from router.datasets.catalog import Example

from .tiny_data import FAST_PARAMS, TinySet, build_tiny_set, train_tiny_model

NEW_TICKETS = [
    ("the printer on floor three jammed", "Hardware"),
    ("cannot login because my password expired", "Access"),
    ("mailbox quota exceeded again this week", "Storage"),
    ("we need a quote from the supplier", "Purchase"),
]


@pytest.mark.parametrize(("title", "group"), NEW_TICKETS)
def test_model_routes_new_text(
    tiny_model: RoutingModel, title: str, group: str
) -> None:
    predictions, _ = tiny_model.predict([ModelInput(title=title)])
    assert predictions[0].group == group


def test_confidence_stays_within_unit_interval(tiny_model: RoutingModel) -> None:
    inputs = [ModelInput(title=title) for title, _ in NEW_TICKETS]
    inputs += [ModelInput(title="please help asap"), ModelInput(title="zxqv")]
    predictions, _ = tiny_model.predict(inputs)
    for prediction in predictions:
        assert prediction.confidence >= 0.0
        assert prediction.confidence <= 1.0


def test_clear_text_beats_vague_confidence(tiny_model: RoutingModel) -> None:
    predictions, _ = tiny_model.predict(
        [ModelInput(title="printer is broken"), ModelInput(title="please help asap")]
    )
    clear, vague = predictions
    assert clear.confidence > vague.confidence


def test_candidates_sorted_by_probability(tiny_model: RoutingModel) -> None:
    inputs = [ModelInput(title=title) for title, _ in NEW_TICKETS]
    predictions, _ = tiny_model.predict(inputs)
    for prediction in predictions:
        probabilities = [c.probability for c in prediction.candidates]
        assert probabilities == sorted(probabilities, reverse=True)


def test_first_candidate_is_predicted_group(tiny_model: RoutingModel) -> None:
    predictions, _ = tiny_model.predict([ModelInput(title="laptop charger broken")])
    assert predictions[0].candidates[0].group == predictions[0].group


@pytest.mark.parametrize(("top", "expected"), [(1, 1), (2, 2), (3, 3), (10, 4)])
def test_candidate_count_follows_top(
    tiny_model: RoutingModel, top: int, expected: int
) -> None:
    predictions, _ = tiny_model.predict([ModelInput(title="printer")], top=top)
    assert len(predictions[0].candidates) == expected


def test_empty_text_predicts_known_group(tiny_model: RoutingModel) -> None:
    predictions, _ = tiny_model.predict([ModelInput()])
    prediction = predictions[0]
    assert prediction.group in tiny_model.card.label_set
    assert prediction.confidence >= 0.0
    assert prediction.confidence <= 1.0
    assert len(prediction.candidates) == 3


def test_featureless_text_gets_low_confidence() -> None:
    # Every held-out ticket of this clean set is routed right during calibration.
    model = train_tiny_model(build_tiny_set(vague=False))
    predictions, rows = model.predict([ModelInput(title="qqqq xxxx zzzz")])
    assert rows.nnz == 0
    # With no evidence among four groups, the top group is right about a quarter of
    # the time, so the confidence must stay far below any auto-route threshold.
    assert predictions[0].confidence < 0.5


def test_single_example_group_is_skipped(tiny_set: TinySet) -> None:
    inputs = [*tiny_set.inputs, ModelInput(title="legal review of the nda contract")]
    labels = [*tiny_set.labels, "Legal"]
    model = train_routing_model(inputs, labels, dataset="tiny", params=FAST_PARAMS)
    assert model.card.metrics["skipped_labels"] == {"Legal": 1}
    assert "Legal" not in model.card.label_set
    assert "Legal" not in list(model.router.classes)


def test_skipped_group_is_never_predicted(tiny_set: TinySet) -> None:
    inputs = [*tiny_set.inputs, ModelInput(title="legal review of the nda contract")]
    labels = [*tiny_set.labels, "Legal"]
    model = train_routing_model(inputs, labels, dataset="tiny", params=FAST_PARAMS)
    predictions, _ = model.predict(
        [ModelInput(title="legal review of the nda contract")], top=10
    )
    assert predictions[0].group != "Legal"
    assert "Legal" not in [c.group for c in predictions[0].candidates]


def test_one_usable_group_raises_training_error() -> None:
    inputs = [ModelInput(title=f"printer {n} is jammed") for n in range(30)]
    inputs.append(ModelInput(title="password expired"))
    labels = ["Hardware"] * 30 + ["Access"]
    with pytest.raises(TrainingError) as caught:
        train_routing_model(inputs, labels, dataset="tiny", params=FAST_PARAMS)
    message = str(caught.value)
    assert "at least two groups with 2 or more examples each" in message
    assert "{'Hardware': 30, 'Access': 1}" in message
    assert "Add examples for more groups." in message


def test_texts_without_words_raise_training_error() -> None:
    inputs = [ModelInput(title="") for _ in range(10)]
    labels = ["Hardware"] * 5 + ["Access"] * 5
    with pytest.raises(TrainingError) as caught:
        train_routing_model(inputs, labels, dataset="tiny", params=FAST_PARAMS)
    assert "no words found in the training texts" in str(caught.value)


def test_split_rejects_single_group() -> None:
    with pytest.raises(TrainingError) as caught:
        split_examples(["Hardware"] * 10, params=TrainingParams())
    assert "at least two groups" in str(caught.value)


def test_hold_out_drops_single_example_group() -> None:
    examples = [
        Example(external_id=f"row-{n}", title=f"printer {n}", label=group, row=n)
        for n, group in enumerate(["Hardware", "Access"] * 10)
    ]
    examples.append(Example(external_id="row-99", title="nda", label="Legal", row=99))
    split = hold_out(examples, params=TrainingParams())
    kept = [e.label for e in (*split.train, *split.test)]
    assert split.skipped_labels == {"Legal": 1}
    assert "Legal" not in kept
    assert len(kept) == 20


def test_hold_out_keeps_a_fifth_for_testing() -> None:
    examples = [
        Example(external_id=f"row-{n}", title=f"printer {n}", label=group, row=n)
        for n, group in enumerate(["Hardware", "Access"] * 50)
    ]
    split = hold_out(examples, params=TrainingParams())
    assert len(split.test) == 20
    assert len(split.train) == 80


def test_few_examples_leave_model_uncalibrated() -> None:
    model = train_tiny_model(build_tiny_set(per_group=5, vague=False))
    assert model.card.metrics["selection"] == {"calibration": "uncalibrated"}
    assert model.card.suggested_threshold is None
    assert model.calibrator.fitted_on == 0


def test_enough_examples_calibrate_on_folds(
    tiny_model: RoutingModel, tiny_set: TinySet
) -> None:
    selection = tiny_model.card.metrics["selection"]
    assert selection["folds"] == 5
    assert selection["calibration_rows"] == len(tiny_set.labels)
    assert tiny_model.calibrator.fitted_on == len(tiny_set.labels)


def test_model_version_repeats_for_same_data(tiny_set: TinySet) -> None:
    first = model_version("tiny", tiny_set.inputs, tiny_set.labels, FAST_PARAMS)
    second = model_version("tiny", tiny_set.inputs, tiny_set.labels, FAST_PARAMS)
    assert first == second
    assert first.startswith("tiny-")


def test_model_version_changes_with_labels(tiny_set: TinySet) -> None:
    relabelled = ["Storage", *tiny_set.labels[1:]]
    before = model_version("tiny", tiny_set.inputs, tiny_set.labels, FAST_PARAMS)
    after = model_version("tiny", tiny_set.inputs, relabelled, FAST_PARAMS)
    assert before != after
