"""The webhook endpoint: order of checks, durable acks, duplicates, errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from router.intake.plugin import NewInboxEvent
from router.service.app import create_app
from router.service.runtime import ServiceRuntime
from router.service.writer import insert_with_store

from .support import (
    WEBHOOK_SECRET,
    auto_route_mappings,
    count_rows,
    encode,
    incident,
    service_settings,
    servicenow_connector,
    signed,
    wait_for,
)

WEBHOOK = "/webhooks/servicenow"


def inbox_rows(store: sessionmaker[Session]) -> int:
    with store() as session:
        return count_rows(session, "inbox_events")


def test_valid_webhook_is_stored_before_ack(
    client: TestClient, store: sessionmaker[Session]
) -> None:
    body = encode(incident(1))
    response = client.post(WEBHOOK, content=body, headers=signed(body))
    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    assert inbox_rows(store) == 1


def test_duplicate_delivery_is_stored_once(
    client: TestClient, store: sessionmaker[Session]
) -> None:
    body = encode(incident(2))
    first = client.post(WEBHOOK, content=body, headers=signed(body))
    second = client.post(WEBHOOK, content=body, headers=signed(body))
    assert first.status_code == 200
    assert second.status_code == 200
    assert inbox_rows(store) == 1


def test_same_delivery_id_is_stored_once(
    client: TestClient, store: sessionmaker[Session]
) -> None:
    for version in ("1", "2"):
        body = encode(incident(3, sys_mod_count=version))
        headers = signed(body) | {"X-Opsroute-Delivery": "delivery-42"}
        assert client.post(WEBHOOK, content=body, headers=headers).status_code == 200
    assert inbox_rows(store) == 1


def test_oversized_body_gets_413_before_signature(
    client: TestClient, store: sessionmaker[Session]
) -> None:
    body = encode(incident(4, description="x" * 70_000))
    headers = {"Content-Type": "application/json", "X-Opsroute-Signature": "sha256=00"}
    response = client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 413
    assert "OPSROUTE_MAX_BODY_BYTES" in response.json()["error"]
    assert inbox_rows(store) == 0


def test_streamed_oversized_body_gets_413(
    client: TestClient, store: sessionmaker[Session]
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 8192

    # A generator body is sent chunked, without Content-Length.
    headers = {"Content-Type": "application/json", "X-Opsroute-Signature": "sha256=00"}
    response = client.post(WEBHOOK, content=chunks(), headers=headers)
    assert response.status_code == 413
    assert inbox_rows(store) == 0


def test_oversized_body_to_unknown_system_gets_413(client: TestClient) -> None:
    body = b"x" * 70_000
    response = client.post("/webhooks/nosuch", content=body)
    assert response.status_code == 413


def test_missing_secret_gets_503_naming_setting(
    client: TestClient, store: sessionmaker[Session]
) -> None:
    body = encode(incident(5))
    response = client.post(f"{WEBHOOK}/eu", content=body, headers=signed(body))
    assert response.status_code == 503
    assert "OPSROUTE_SERVICENOW_EU_WEBHOOK_SECRET" in response.json()["error"]
    assert inbox_rows(store) == 0


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/webhooks/nosuch", 404),
        ("/webhooks/servicenow/nosuch", 404),
        ("/nothing-here", 404),
        ("/docs", 404),
    ],
)
def test_unknown_path_gets_404(client: TestClient, path: str, status: int) -> None:
    body = encode(incident(6))
    response = client.post(path, content=body, headers=signed(body))
    assert response.status_code == status


def test_bad_signature_gets_401_and_stores_nothing(
    client: TestClient, store: sessionmaker[Session]
) -> None:
    body = encode(incident(7))
    response = client.post(WEBHOOK, content=body, headers=signed(body, "wrong"))
    assert response.status_code == 401
    assert "signature" in response.json()["error"]
    assert inbox_rows(store) == 0


def test_missing_signature_gets_401(
    client: TestClient, store: sessionmaker[Session]
) -> None:
    body = encode(incident(8))
    headers = {"Content-Type": "application/json"}
    response = client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 401
    assert inbox_rows(store) == 0


def test_truncated_json_gets_400_and_stores_nothing(
    client: TestClient, store: sessionmaker[Session]
) -> None:
    body = encode(incident(9))[:-10]
    response = client.post(WEBHOOK, content=body, headers=signed(body))
    assert response.status_code == 400
    assert "invalid JSON" in response.json()["error"]
    assert inbox_rows(store) == 0


def test_wrong_content_type_gets_415(
    client: TestClient, store: sessionmaker[Session]
) -> None:
    body = encode(incident(10))
    headers = signed(body) | {"Content-Type": "text/plain"}
    response = client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 415
    assert inbox_rows(store) == 0


def test_invalid_content_length_gets_400(client: TestClient) -> None:
    body = encode(incident(11))
    headers = signed(body) | {"Content-Length": "ten"}
    response = client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 400


def test_logs_hold_neither_secret_nor_body(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    description = "unique-body-text-5d1c"
    body = encode(incident(12, description=description))
    client.post(WEBHOOK, content=body, headers=signed(body))
    client.post(WEBHOOK, content=body, headers=signed(body, "wrong"))
    logged = "\n".join(
        record.getMessage() + repr(vars(record)) for record in caplog.records
    )
    assert WEBHOOK_SECRET not in logged
    assert description not in logged


def test_failed_commit_gets_503_and_stores_nothing(
    model_database: str, tmp_path: Path, store: sessionmaker[Session]
) -> None:
    def insert_then_fail(
        session: Session, events: Sequence[NewInboxEvent]
    ) -> list[bool]:
        insert_with_store(session, events)
        raise RuntimeError("the disk is full")

    mappings = auto_route_mappings()
    runtime = ServiceRuntime(
        service_settings(model_database, tmp_path),
        connectors={("servicenow", "default"): servicenow_connector(mappings=mappings)},
        mappings=mappings,
        insert=insert_then_fail,
    )
    body = encode(incident(13))
    with TestClient(create_app(runtime=runtime)) as client:
        response = client.post(WEBHOOK, content=body, headers=signed(body))
    assert response.status_code == 503
    assert "retry later" in response.json()["error"]
    assert inbox_rows(store) == 0


def test_received_events_are_counted_in_metrics(client: TestClient) -> None:
    body = encode(incident(14))
    client.post(WEBHOOK, content=body, headers=signed(body))
    client.post(WEBHOOK, content=body, headers=signed(body))
    client.post(WEBHOOK, content=body, headers=signed(body, "wrong"))
    text = client.get("/metrics").text
    stored = 'opsroute_events_received_total{outcome="stored",system="servicenow"} 1.0'
    duplicate = (
        'opsroute_events_received_total{outcome="duplicate",system="servicenow"} 1.0'
    )
    rejected = (
        'opsroute_events_received_total{outcome="rejected",system="servicenow"} 1.0'
    )
    assert stored in text
    assert duplicate in text
    assert rejected in text


def test_stored_event_is_routed_by_worker(
    client: TestClient, store: sessionmaker[Session]
) -> None:
    body = encode(incident(15))
    client.post(WEBHOOK, content=body, headers=signed(body))

    def decided() -> bool:
        with store() as session:
            return count_rows(session, "decisions") == 1

    assert wait_for(decided, timeout=10)


SALESFORCE_ORG = "00D5g000004XxYzEAK"


def salesforce_message(org_id: str) -> bytes:
    """Return an Outbound Message with one Case notification."""
    case = (
        '<sObject xsi:type="sf:Case" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        "<sf:Id>5005g00000XyZaBAAV</sf:Id><sf:CaseNumber>00001234</sf:CaseNumber>"
        "<sf:Subject>Printer on floor 3 is jammed</sf:Subject>"
        "<sf:Priority>Medium</sf:Priority><sf:Status>New</sf:Status>"
        "<sf:SystemModstamp>2025-03-01T09:30:00.000Z</sf:SystemModstamp></sObject>"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org_id}</OrganizationId>"
        "<ActionId>04k5g000000CbD2AAK</ActionId>"
        f"<Notification><Id>04l5g00000AbCdEAAV</Id>{case}</Notification>"
        "</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


@pytest.fixture
def salesforce_client(model_database: str, tmp_path: Path) -> Iterator[TestClient]:
    from connectors.salesforce import SalesforceConnector
    from connectors.settings import SalesforceSettings

    mappings = auto_route_mappings()
    connector = SalesforceConnector(
        settings=SalesforceSettings(org_ids=SALESFORCE_ORG), mappings=mappings
    )
    runtime = ServiceRuntime(
        service_settings(model_database, tmp_path),
        connectors={("salesforce", "default"): connector},
        mappings=mappings,
    )
    with TestClient(create_app(runtime=runtime)) as client:
        yield client


def test_salesforce_ack_is_soap_response(
    salesforce_client: TestClient, store: sessionmaker[Session]
) -> None:
    response = salesforce_client.post(
        "/webhooks/salesforce",
        content=salesforce_message(SALESFORCE_ORG),
        headers={"Content-Type": "text/xml; charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert b"<Ack>true</Ack>" in response.content
    assert inbox_rows(store) == 1


def test_salesforce_other_org_stores_nothing(
    salesforce_client: TestClient, store: sessionmaker[Session]
) -> None:
    response = salesforce_client.post(
        "/webhooks/salesforce",
        content=salesforce_message("00D000000000062EAA"),
        headers={"Content-Type": "text/xml; charset=utf-8"},
    )
    assert response.status_code == 403
    assert b"<Ack>true</Ack>" not in response.content
    assert inbox_rows(store) == 0
