"""/healthz, /readyz and /metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from router.service.app import create_app
from router.service.runtime import ServiceRuntime
from router.store.db import head_revision

from .support import (
    auto_route_mappings,
    service_settings,
    servicenow_connector,
    wait_for,
)


def test_healthz_reports_alive(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_readyz_reports_ready_with_model(client: TestClient) -> None:
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200
    assert body["missing"] == []
    assert body["checks"]["model"]["version"].startswith("helpdesk-")


def test_readyz_names_missing_webhook_secret(client: TestClient) -> None:
    state = client.get("/readyz").json()["checks"]["connectors"]["servicenow/eu"]
    assert state["webhook_secret_missing"] == "OPSROUTE_SERVICENOW_EU_WEBHOOK_SECRET"
    assert state["webhooks"] == "rejected with 503"


def test_readyz_says_writebacks_wait_without_credentials(client: TestClient) -> None:
    state = client.get("/readyz").json()["checks"]["connectors"]["servicenow/default"]
    assert state["write_back"] == "waiting in the outbox"
    assert "OPSROUTE_SERVICENOW_PASSWORD" in state["missing_settings"]
    assert state["webhooks"] == "accepted"


def _stamp(runtime: ServiceRuntime, revision: str) -> None:
    with runtime.engine.begin() as connection:
        connection.execute(
            text("UPDATE alembic_version SET version_num = :revision"),
            {"revision": revision},
        )


def test_readyz_503_after_revision_change(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    current = runtime.state.migrations_current
    _stamp(runtime, "9999_from_a_newer_release")

    runtime.check_migrations()
    moved = client.get("/readyz")
    _stamp(runtime, head_revision())
    runtime.check_migrations()
    back = client.get("/readyz")

    assert current is True
    assert moved.status_code == 503
    assert "migrations" in moved.json()["missing"]
    detail = moved.json()["checks"]["migrations"]["detail"]
    assert "9999_from_a_newer_release" in detail
    assert back.status_code == 200


def test_readyz_is_503_while_migrations_pending(
    database_url: str, tmp_path: Path
) -> None:
    mappings = auto_route_mappings()
    runtime = ServiceRuntime(
        service_settings(database_url, tmp_path, run_migrations=False),
        connectors={("servicenow", "default"): servicenow_connector(mappings=mappings)},
        mappings=mappings,
    )
    with TestClient(create_app(runtime=runtime)) as client:
        health = client.get("/healthz")
        wait_for(lambda: runtime.state.migrations_detail != "not checked yet")
        response = client.get("/readyz")
    body = response.json()
    assert health.status_code == 200
    assert response.status_code == 503
    assert "migrations" in body["missing"]
    assert "model" in body["missing"]
    assert "opsroute db upgrade" in body["checks"]["migrations"]["detail"]


def test_metrics_are_all_named_opsroute(client: TestClient) -> None:
    response = client.get("/metrics")
    families = list(text_string_to_metric_families(response.text))
    names = {family.name for family in families}
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert {
        "opsroute_events_received",
        "opsroute_decisions",
        "opsroute_writeback_failures",
        "opsroute_queue_depth",
        "opsroute_decision_latency_seconds",
    } <= names
    assert all(name.startswith("opsroute_") for name in names)


def test_two_apps_keep_separate_metrics(runtime: ServiceRuntime) -> None:
    first = create_app(runtime=runtime)
    second = create_app(
        runtime=ServiceRuntime(
            runtime.settings, connectors=runtime.connectors, mappings=runtime.mappings
        )
    )
    first.state.runtime.metrics.decisions.labels(action="auto_route").inc()
    first_text = first.state.runtime.metrics.render().decode()
    second_text = second.state.runtime.metrics.render().decode()
    assert 'opsroute_decisions_total{action="auto_route"} 1.0' in first_text
    assert 'opsroute_decisions_total{action="auto_route"}' not in second_text
