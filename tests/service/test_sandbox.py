"""The sandbox round trip: a webhook per system in, assignment and note out.

The test serves a database that already contains the small test model, so it
skips the half minute of training that `opsroute sandbox` spends.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from router.sandbox.run import (
    build_connectors,
    print_round_trips,
    running_service,
    sandbox_mappings,
    start_fakes,
    wait_for_write_backs,
    wait_until_ready,
)
from router.sandbox.webhooks import send_webhooks


def test_round_trip_writes_back_to_each_fake(
    model_database: str, tmp_path: Path
) -> None:
    secret = secrets.token_urlsafe(16)
    mappings = sandbox_mappings()
    fakes = start_fakes(tmp_path, mappings)
    lines: list[str] = []
    try:
        connectors = build_connectors(fakes, mappings, webhook_secret=secret)
        with running_service(
            tmp_path, connectors, mappings, database_url=model_database
        ) as base_url:
            wait_until_ready(base_url, timeout=60)
            trips = send_webhooks(base_url, fakes, secret)
            complete = wait_for_write_backs(fakes, trips, timeout=30)
            print_round_trips(trips, echo=lines.append)
    finally:
        fakes.stop()

    assert complete is True
    assert [trip.webhook_status for trip in trips] == [200, 200, 200]
    for trip in trips:
        assert trip.group, trip.system
        assert trip.note is not None
        assert "opsroute routed this ticket to" in trip.note
    assert len(fakes.servicenow.writes()) == 1
    assert len(fakes.salesforce.case_comments) == 1
    assert lines[0].startswith("servicenow INC")
