"""ServiceNow webhooks: authentication, parsing, duplicate keys and headers."""

from __future__ import annotations

import json

import pytest
from connector_support import WEBHOOK_SECRET, sign, webhook_request
from pydantic import SecretStr

from connectors.servicenow import ServiceNowConnector
from connectors.settings import ServiceNowSettings
from router.demo.payloads import DemoRow, to_servicenow_record
from router.intake import WebhookError
from router.mapping import MappingSet

RECORD = to_servicenow_record(DemoRow(external_id="HDFS-1", title="Namenode is down"))
BODY = json.dumps({**RECORD, "table": "incident", "operation": "insert"}).encode()


@pytest.fixture
def connector(mappings: MappingSet) -> ServiceNowConnector:
    settings = ServiceNowSettings(webhook_secret=SecretStr(WEBHOOK_SECRET))
    return ServiceNowConnector(settings=settings, mappings=mappings)


def _rejection(connector: ServiceNowConnector, **kwargs: object) -> WebhookError:
    with pytest.raises(WebhookError) as caught:
        connector.parse_webhook(webhook_request("servicenow", **kwargs))  # type: ignore[arg-type]
    return caught.value


def test_signed_webhook_gives_one_event(connector: ServiceNowConnector) -> None:
    request = webhook_request(
        "servicenow", BODY, headers={"X-Opsroute-Signature": sign(BODY)}
    )

    parsed = connector.parse_webhook(request)

    assert len(parsed.events) == 1
    event = parsed.events[0]
    assert event.record_key == RECORD["sys_id"]
    assert event.record_version == "0"
    assert event.event_type == "insert"
    assert event.record["number"] == RECORD["number"]


def test_bearer_token_is_accepted(connector: ServiceNowConnector) -> None:
    request = webhook_request(
        "servicenow", BODY, headers={"Authorization": f"Bearer {WEBHOOK_SECRET}"}
    )

    assert len(connector.parse_webhook(request).events) == 1


def test_wrong_bearer_token_is_401(connector: ServiceNowConnector) -> None:
    error = _rejection(
        connector, body=BODY, headers={"Authorization": "Bearer not-the-secret"}
    )

    assert error.status_code == 401


def test_bad_signature_is_401(connector: ServiceNowConnector) -> None:
    error = _rejection(
        connector, body=BODY, headers={"X-Opsroute-Signature": sign(BODY, "other")}
    )

    assert error.status_code == 401
    assert "does not match" in str(error)


def test_signature_without_prefix_is_401(connector: ServiceNowConnector) -> None:
    error = _rejection(
        connector, body=BODY, headers={"X-Opsroute-Signature": sign(BODY)[7:]}
    )

    assert error.status_code == 401
    assert "sha256=" in str(error)


def test_missing_signature_header_is_401(connector: ServiceNowConnector) -> None:
    error = _rejection(connector, body=BODY)

    assert error.status_code == 401
    assert "X-Opsroute-Signature" in str(error)


def test_truncated_json_is_400_with_position(connector: ServiceNowConnector) -> None:
    body = BODY[:40]

    error = _rejection(
        connector, body=body, headers={"X-Opsroute-Signature": sign(body)}
    )

    assert error.status_code == 400
    assert "line 1, column 12, position 11 of 40 bytes" in str(error)
    assert body.decode() not in str(error)


def test_wrong_content_type_is_415(connector: ServiceNowConnector) -> None:
    error = _rejection(
        connector,
        body=BODY,
        headers={"X-Opsroute-Signature": sign(BODY)},
        content_type="text/plain",
    )

    assert error.status_code == 415
    assert "application/json" in str(error)


def test_missing_sys_id_is_400(connector: ServiceNowConnector) -> None:
    body = json.dumps({"number": "INC0000001"}).encode()

    error = _rejection(
        connector, body=body, headers={"X-Opsroute-Signature": sign(body)}
    )

    assert error.status_code == 400
    assert "sys_id" in str(error)


def test_unconfigured_secret_is_503(mappings: MappingSet) -> None:
    connector = ServiceNowConnector(settings=ServiceNowSettings(), mappings=mappings)

    error = _rejection(connector, body=BODY, headers={"X-Opsroute-Signature": "x"})

    assert error.status_code == 503
    assert "OPSROUTE_SERVICENOW_WEBHOOK_SECRET" in str(error)


def test_delivery_header_sets_delivery_id(connector: ServiceNowConnector) -> None:
    headers = {"X-Opsroute-Signature": sign(BODY), "X-Opsroute-Delivery": "d-42"}

    event = connector.parse_webhook(
        webhook_request("servicenow", BODY, headers=headers)
    ).events[0]

    assert event.delivery_id == "d-42"


def test_no_delivery_header_keys_on_version(connector: ServiceNowConnector) -> None:
    event = connector.parse_webhook(
        webhook_request(
            "servicenow", BODY, headers={"X-Opsroute-Signature": sign(BODY)}
        )
    ).events[0]

    assert event.delivery_id is None
    assert event.record_version == RECORD["sys_mod_count"]


def test_version_falls_back_to_updated_on(connector: ServiceNowConnector) -> None:
    record = {key: value for key, value in RECORD.items() if key != "sys_mod_count"}
    body = json.dumps(record).encode()

    event = connector.parse_webhook(
        webhook_request(
            "servicenow", body, headers={"X-Opsroute-Signature": sign(body)}
        )
    ).events[0]

    assert event.record_version == RECORD["sys_updated_on"]


def test_stored_headers_drop_credentials(connector: ServiceNowConnector) -> None:
    headers = {
        "X-Opsroute-Signature": sign(BODY),
        "Cookie": "session=abc",
        "User-Agent": "ServiceNow/1.0",
    }

    event = connector.parse_webhook(
        webhook_request("servicenow", BODY, headers=headers)
    ).events[0]

    assert "x-opsroute-signature" not in event.headers
    assert "cookie" not in event.headers
    assert event.headers["user-agent"] == "ServiceNow/1.0"


def test_bearer_header_is_not_stored(connector: ServiceNowConnector) -> None:
    headers = {"Authorization": f"Bearer {WEBHOOK_SECRET}"}

    event = connector.parse_webhook(
        webhook_request("servicenow", BODY, headers=headers)
    ).events[0]

    assert "authorization" not in event.headers


def test_errors_never_contain_the_secret(connector: ServiceNowConnector) -> None:
    cases = [
        {"headers": {"Authorization": f"Bearer {WEBHOOK_SECRET}x"}},
        {"headers": {"X-Opsroute-Signature": sign(BODY, "x")}},
        {"headers": {"X-Opsroute-Signature": sign(b"{")}, "body": b"{"},
    ]
    for case in cases:
        body = case.get("body", BODY)
        error = _rejection(connector, body=body, headers=case["headers"])

        assert WEBHOOK_SECRET not in str(error)


def test_webhook_record_becomes_ticket(
    connector: ServiceNowConnector, mappings: MappingSet
) -> None:
    event = connector.parse_webhook(
        webhook_request(
            "servicenow", BODY, headers={"X-Opsroute-Signature": sign(BODY)}
        )
    ).events[0]

    ticket = connector.to_ticket(event.record, mappings=mappings)

    assert ticket.external_id == RECORD["number"]
    assert ticket.record_id == RECORD["sys_id"]
    assert ticket.title == "Namenode is down"
