"""Start-up on an empty database: respond at once, train in a child, others wait."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from router.service.app import create_app
from router.service.runtime import ServiceRuntime

from .support import (
    auto_route_mappings,
    service_settings,
    servicenow_connector,
    wait_for,
)

# Training on the whole helpdesk set took 12 s on 2 cores, plus the child's imports.
TRAINING_TIMEOUT_SECONDS = 180.0


def replica(database_url: str, tmp_path: Path, name: str) -> ServiceRuntime:
    mappings = auto_route_mappings()
    return ServiceRuntime(
        service_settings(database_url, tmp_path / name, replica_id=name),
        connectors={("servicenow", "default"): servicenow_connector(mappings=mappings)},
        mappings=mappings,
    )


def test_one_replica_trains_while_both_serve(database_url: str, tmp_path: Path) -> None:
    trainer = replica(database_url, tmp_path, "replica-a")
    waiter = replica(database_url, tmp_path, "replica-b")
    with TestClient(create_app(runtime=trainer)) as first:
        started = time.monotonic()
        health = first.get("/healthz")
        health_seconds = time.monotonic() - started
        assert wait_for(lambda: "training" in trainer.state.model_detail, timeout=30)
        with TestClient(create_app(runtime=waiter)) as second:
            assert wait_for(
                lambda: "another replica" in waiter.state.model_detail, timeout=30
            )
            training = first.get("/readyz")
            waiting = second.get("/readyz")
            during_training = first.get("/healthz")

            assert wait_for(
                lambda: first.get("/readyz").status_code == 200,
                timeout=TRAINING_TIMEOUT_SECONDS,
                interval=0.5,
            )
            assert wait_for(
                lambda: second.get("/readyz").status_code == 200, timeout=30
            )
            version = first.get("/readyz").json()["checks"]["model"]["version"]
            other = second.get("/readyz").json()["checks"]["model"]["version"]

    assert health.status_code == 200
    assert health_seconds < 2.0
    assert during_training.status_code == 200
    assert training.status_code == 503
    assert training.json()["missing"] == ["model"]
    assert "helpdesk" in training.json()["checks"]["model"]["detail"]
    assert waiting.status_code == 503
    assert version.startswith("helpdesk-")
    assert other == version
