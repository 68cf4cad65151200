"""Fixtures for connector tests: the shipped mappings and fake servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from router.mapping import MappingSet, load_mappings
from router.sandbox.servicenow import FakeServiceNow


@pytest.fixture(scope="session")
def mappings() -> MappingSet:
    """Return the shipped mapping files."""
    return load_mappings()


@pytest.fixture
def fake_servicenow() -> Iterator[FakeServiceNow]:
    """Yield a running fake ServiceNow instance."""
    with FakeServiceNow(lifetime_seconds=60) as fake:
        yield fake
