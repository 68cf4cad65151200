"""Fixtures for the classification tests: a tiny training set and its model."""

from __future__ import annotations

import pytest

from router.classification.model import RoutingModel

from .tiny_data import TinySet, build_tiny_set, train_tiny_model


@pytest.fixture(scope="session")
def tiny_set() -> TinySet:
    """Return 24 distinctive and 4 vague tickets for each of the four groups."""
    return build_tiny_set()


@pytest.fixture(scope="session")
def tiny_model(tiny_set: TinySet) -> RoutingModel:
    """Return the model trained on `tiny_set`, which tests must not change."""
    return train_tiny_model(tiny_set)
