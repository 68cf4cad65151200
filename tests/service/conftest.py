"""Fixtures for the service tests: a stored model, runtimes and running apps."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from router.classification.model import RoutingModel
from router.classification.registry import save_model
from router.service.app import create_app
from router.service.runtime import ServiceRuntime
from router.store.db import make_engine, session_factory, upgrade

from .support import (
    auto_route_mappings,
    service_settings,
    servicenow_connector,
    train_small_model,
    wait_for,
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings read OPSROUTE_* variables, so the developer's own must not leak in.
    for name in list(os.environ):
        if name.startswith("OPSROUTE_") and not name.startswith("OPSROUTE_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def small_model() -> RoutingModel:
    """Return a helpdesk model trained once per test process."""
    return train_small_model()


@pytest.fixture
def model_database(database_url: str, small_model: RoutingModel) -> Iterator[str]:
    """Yield the URL of a migrated database whose active model is `small_model`."""
    engine = make_engine(database_url)
    upgrade(engine)
    with session_factory(engine).begin() as session:
        save_model(session, small_model, activate=True)
    engine.dispose()
    yield database_url


@pytest.fixture
def store(model_database: str) -> Iterator[sessionmaker[Session]]:
    """Yield a session factory on the test database, for counting rows."""
    engine: Engine = make_engine(model_database)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def runtime(model_database: str, tmp_path: Path) -> ServiceRuntime:
    """Return a runtime with a ServiceNow connector and one without a secret."""
    mappings = auto_route_mappings()
    connectors = {
        ("servicenow", "default"): servicenow_connector(mappings=mappings),
        ("servicenow", "eu"): servicenow_connector(
            instance="eu", secret=None, mappings=mappings
        ),
    }
    return ServiceRuntime(
        service_settings(model_database, tmp_path, max_body_bytes=64 * 1024),
        connectors=connectors,
        mappings=mappings,
    )


@pytest.fixture
def client(runtime: ServiceRuntime) -> Iterator[TestClient]:
    """Yield a client of the running app, once its model is loaded."""
    with TestClient(create_app(runtime=runtime)) as test_client:
        if not wait_for(lambda: runtime.readiness()[0], timeout=30):
            pytest.fail(f"The service did not get ready: {runtime.readiness()[1]}")
        yield test_client
