"""Training inside a daemon process, as the service's start-up does."""

from __future__ import annotations

import multiprocessing
import warnings
from multiprocessing.queues import Queue

from router.classification.training import TrainingParams, train_routing_model

from .tiny_data import build_tiny_set


def _train_and_count_warnings(results: Queue[list[str]]) -> None:
    tiny = build_tiny_set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_routing_model(
            tiny.inputs, tiny.labels, dataset="tiny", params=TrainingParams(jobs=2)
        )
    results.put([str(warning.message) for warning in caught])


def test_daemon_training_emits_no_joblib_warnings() -> None:
    context = multiprocessing.get_context("spawn")
    results: Queue[list[str]] = context.Queue()
    process = context.Process(
        target=_train_and_count_warnings, args=(results,), daemon=True
    )
    process.start()
    messages = results.get(timeout=120)
    process.join(30)

    assert process.exitcode == 0
    assert [message for message in messages if "Loky" in message] == []
