"""The database going away and coming back, through a loopback TCP proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from router.service.app import create_app
from router.service.runtime import ServiceRuntime

from .support import (
    auto_route_mappings,
    count_rows,
    encode,
    incident,
    service_settings,
    servicenow_connector,
    signed,
    wait_for,
)
from .tcp_proxy import TcpProxy

WEBHOOK = "/webhooks/servicenow"


@pytest.fixture
def proxy(model_database: str) -> Iterator[TcpProxy]:
    url = make_url(model_database)
    if url.get_backend_name() != "postgresql":
        pytest.skip("Only a PostgreSQL server can be cut off with a TCP proxy.")
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as started:
        yield started


def test_outage_gives_503_and_recovers(
    model_database: str,
    tmp_path: Path,
    proxy: TcpProxy,
    store: sessionmaker[Session],
) -> None:
    proxied = make_url(model_database).set(host="127.0.0.1", port=proxy.port)
    mappings = auto_route_mappings()
    runtime = ServiceRuntime(
        service_settings(
            proxied.render_as_string(hide_password=False),
            tmp_path,
            ack_timeout_seconds=5.0,
        ),
        connectors={("servicenow", "default"): servicenow_connector(mappings=mappings)},
        mappings=mappings,
    )
    with TestClient(create_app(runtime=runtime)) as client:
        assert wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30)
        before = encode(incident(1))
        stored_before = client.post(WEBHOOK, content=before, headers=signed(before))

        proxy.cut()
        went_down = wait_for(
            lambda: client.get("/readyz").status_code == 503, timeout=10
        )
        down = client.get("/readyz").json()
        during = encode(incident(2))
        rejected = client.post(WEBHOOK, content=during, headers=signed(during))
        health = client.get("/healthz")

        proxy.restore()
        came_back = wait_for(
            lambda: client.get("/readyz").status_code == 200, timeout=20
        )
        after = encode(incident(3))
        stored_after = client.post(WEBHOOK, content=after, headers=signed(after))
        retried = client.post(WEBHOOK, content=during, headers=signed(during))

    assert stored_before.status_code == 200
    assert went_down
    assert down["missing"] == ["database"]
    assert rejected.status_code == 503
    assert health.status_code == 200
    assert came_back
    assert stored_after.status_code == 200
    assert retried.status_code == 200
    with store() as session:
        assert count_rows(session, "inbox_events") == 3
