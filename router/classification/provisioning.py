"""Find the stored model for a training set, or train and store one."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from router.classification.evaluation import figures_json, measure_model, train_on
from router.classification.features import input_from_example
from router.classification.model import RoutingModel
from router.classification.registry import has_model, load_model, save_model
from router.classification.training import TrainingParams, model_version
from router.datasets.catalog import Example
from router.settings import CoreSettings

logger = logging.getLogger(__name__)


def obtain_model(
    session_factory: Any,
    *,
    dataset: str,
    train: Sequence[Example],
    settings: CoreSettings,
    params: TrainingParams,
    retrain: bool,
    held_out: Sequence[Example] = (),
    threshold: float | None = None,
) -> tuple[RoutingModel, bool, float | None]:
    """Load the stored model for this training data, or train and store one.

    A model trained here becomes active when its dataset has no active model yet,
    and runs in shadow otherwise. With `held_out` examples and a `threshold`, it
    is measured on them first, and the figures are stored on its card, where
    `opsroute model list` and `opsroute model promote` read them.

    Returns:
        The model, whether it was trained now, and the training time in seconds.
    """
    inputs = [input_from_example(example) for example in train]
    labels = [example.label for example in train]
    version = model_version(dataset, inputs, labels, params)
    with session_factory() as session:
        if not retrain and has_model(session, version=version):
            logger.info("Reusing stored model %s", version)
            return (
                load_model(
                    session, cache_dir=settings.model_cache_dir, version=version
                ),
                False,
                None,
            )

    started = time.perf_counter()
    model = train_on(train, dataset=dataset, params=params)
    elapsed = time.perf_counter() - started
    if held_out and threshold is not None:
        measured = measure_model(model, held_out, threshold=threshold)
        model.card.metrics["held_out"] = figures_json(measured)
    with session_factory() as session, session.begin():
        save_model(session, model, activate=None)
    return model, True, elapsed
