"""The report and the drift review on a store filled through the webhook service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from router.analytics.drift import DriftLimits, default_windows, review_drift
from router.analytics.report import build_report
from router.store.service import append_audit

from .support import count_rows, encode, incident, signed, wait_for

WEBHOOK = "/webhooks/servicenow"
TICKETS = 6


def test_report_reads_service_decisions(
    client: TestClient, store: sessionmaker[Session]
) -> None:
    for number in range(1, TICKETS + 1):
        body = encode(incident(number))
        assert (
            client.post(WEBHOOK, content=body, headers=signed(body)).status_code == 200
        )

    def decided() -> bool:
        with store() as session:
            return count_rows(session, "decisions") == TICKETS

    assert wait_for(decided, timeout=30)
    with store.begin() as session:
        # An agent moves the first ticket and resolves it, as a connector would record.
        later = datetime.now(UTC) + timedelta(hours=1)
        append_audit(
            session,
            event="transfer",
            ticket_key="servicenow:INC0000001",
            actor="servicenow:agent",
            details={"from_group": "x", "to_group": "Storage", "by": "person"},
            at=later,
        )
        append_audit(
            session,
            event="ticket_resolved",
            ticket_key="servicenow:INC0000001",
            actor="servicenow:agent",
            details={"group": "Storage"},
            at=later + timedelta(hours=1),
        )
    with store() as session:
        report = build_report(session)
        windows = default_windows(session, recent_days=28, reference_days=56)
        assert windows is not None
        drift = review_drift(session, windows=windows, limits=DriftLimits())

    assert report["tickets"] == TICKETS
    assert report["simulated"] is False
    assert report["by_source_system"]["servicenow"]["tickets"] == TICKETS
    assert report["counts"]["transfers"] == 1
    assert report["counts"]["tickets_resolved"] == 1
    assert drift.recent_tickets == TICKETS
    assert drift.reference_tickets == 0
    assert drift.label_psi is None
    assert drift.flags == []
