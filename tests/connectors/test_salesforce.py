"""Salesforce: Outbound Message webhooks and write-back through simple-salesforce."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from connector_support import Action, webhook_request
from pydantic import SecretStr

from connectors.salesforce import ACK_BODY, SalesforceConnector
from connectors.settings import SalesforceSettings
from router.demo.payloads import DemoRow, to_salesforce_case
from router.intake import PermanentDeliveryError, RetryableDeliveryError, WebhookError
from router.mapping import MappingSet
from router.sandbox.salesforce import FakeSalesforce

ORG_ID = "00D5g000004XxYzEAK"
OTHER_ORG_ID = "00D000000000062EAA"
CASES = [
    to_salesforce_case(DemoRow(external_id=f"HELP-{n}", title=f"Laptop {n} broken"))
    for n in range(1, 4)
]
NOTIFICATION_IDS = ["04l5g00000AbCdEAAV", "04l5g00000AbCdFAAV", "04l5g00000AbCdGAAV"]
SOAP_TYPE = "text/xml; charset=utf-8"


def _notification(notification_id: str, case: dict[str, object]) -> str:
    fields = "".join(
        f"<sf:{name}>{case[name]}</sf:{name}>"
        for name in (
            "Id",
            "CaseNumber",
            "Subject",
            "Priority",
            "Status",
            "SystemModstamp",
        )
    )
    return (
        f"<Notification><Id>{notification_id}</Id>"
        '<sObject xsi:type="sf:Case" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f'{fields}<sf:Description xsi:nil="true"/></sObject></Notification>'
    )


def outbound_message(org_id: str = ORG_ID, count: int = 3, prolog: str = "") -> bytes:
    """Return an Outbound Message with `count` Case notifications."""
    notifications = "".join(
        _notification(NOTIFICATION_IDS[i], CASES[i]) for i in range(count)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org_id}</OrganizationId>"
        "<ActionId>04k5g000000CbD2AAK</ActionId>"
        "<SessionId>00D5g000004XxYz!AQ0AQ.secret.session</SessionId>"
        "<EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/60.0</EnterpriseUrl>"
        f"{notifications}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


@pytest.fixture
def connector(mappings: MappingSet) -> SalesforceConnector:
    # The allow-list takes the 15-character form; the message sends 18.
    settings = SalesforceSettings(org_ids=f"{OTHER_ORG_ID}, {ORG_ID[:15]}")
    return SalesforceConnector(settings=settings, mappings=mappings)


def _rejection(
    connector: SalesforceConnector, body: bytes, **kwargs: object
) -> WebhookError:
    request = webhook_request("salesforce", body, content_type=SOAP_TYPE, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(WebhookError) as caught:
        connector.parse_webhook(request)
    return caught.value


def test_three_notifications_give_three_events(connector: SalesforceConnector) -> None:
    parsed = connector.parse_webhook(
        webhook_request("salesforce", outbound_message(), content_type=SOAP_TYPE)
    )

    assert [event.delivery_id for event in parsed.events] == NOTIFICATION_IDS
    assert [event.record_key for event in parsed.events] == [c["Id"] for c in CASES]
    assert parsed.events[0].record_version == CASES[0]["SystemModstamp"]


def test_ack_is_notifications_response(connector: SalesforceConnector) -> None:
    parsed = connector.parse_webhook(
        webhook_request("salesforce", outbound_message(count=1), content_type=SOAP_TYPE)
    )

    assert parsed.ack_body == ACK_BODY
    assert b"<Ack>true</Ack>" in parsed.ack_body
    assert parsed.ack_content_type.startswith("text/xml")


def test_sobject_becomes_case_shape(connector: SalesforceConnector) -> None:
    event = connector.parse_webhook(
        webhook_request("salesforce", outbound_message(count=1), content_type=SOAP_TYPE)
    ).events[0]

    assert event.record["attributes"] == {"type": "Case"}
    assert event.record["CaseNumber"] == CASES[0]["CaseNumber"]
    assert event.record["Description"] is None
    assert "SessionId" not in event.record


def test_case_record_becomes_ticket(
    connector: SalesforceConnector, mappings: MappingSet
) -> None:
    event = connector.parse_webhook(
        webhook_request("salesforce", outbound_message(count=1), content_type=SOAP_TYPE)
    ).events[0]

    ticket = connector.to_ticket(event.record, mappings=mappings)

    assert ticket.external_id == CASES[0]["CaseNumber"]
    assert ticket.title == "Laptop 1 broken"
    assert ticket.priority == 3


def test_disallowed_org_is_403(connector: SalesforceConnector) -> None:
    error = _rejection(connector, outbound_message(org_id="00D5g000009QqQqEAK"))

    assert error.status_code == 403
    assert "00D5g000009QqQqEAK" in str(error)
    assert error.response_body is not None
    assert b"<faultcode>soapenv:Client</faultcode>" in error.response_body


def test_disallowed_org_gets_no_ack(connector: SalesforceConnector) -> None:
    error = _rejection(connector, outbound_message(org_id="00D5g000009QqQqEAK"))

    assert error.response_body is not None
    assert b"<Ack>" not in error.response_body


def test_truncated_xml_is_400_with_position(connector: SalesforceConnector) -> None:
    error = _rejection(connector, outbound_message()[:300])

    assert error.status_code == 400
    assert "line 1 column" in str(error)


def test_wrong_content_type_is_415(connector: SalesforceConnector) -> None:
    request = webhook_request(
        "salesforce", outbound_message(), content_type="application/json"
    )

    with pytest.raises(WebhookError) as caught:
        connector.parse_webhook(request)

    assert caught.value.status_code == 415
    assert "text/xml" in str(caught.value)


def test_doctype_is_rejected(connector: SalesforceConnector) -> None:
    prolog = '<!DOCTYPE x [<!ENTITY boom "boom">]>'

    error = _rejection(connector, outbound_message(prolog=prolog))

    assert error.status_code == 400
    assert "DTD" in str(error)


def test_entity_expansion_is_rejected(connector: SalesforceConnector) -> None:
    body = outbound_message(prolog='<!DOCTYPE e [<!ENTITY a "aaaaaaaaaa">]>')
    body = body.replace(b"<sf:Subject>", b"<sf:Subject>&a;")

    error = _rejection(connector, body)

    assert error.status_code == 400


def test_non_case_sobject_is_400(connector: SalesforceConnector) -> None:
    body = outbound_message(count=1).replace(b"sf:Case", b"sf:Lead")

    error = _rejection(connector, body)

    assert error.status_code == 400
    assert "Lead" in str(error)


def test_not_an_outbound_message_is_400(connector: SalesforceConnector) -> None:
    error = _rejection(connector, b"<root><child/></root>")

    assert error.status_code == 400
    assert "notifications" in str(error)


def test_empty_allow_list_is_503(mappings: MappingSet) -> None:
    connector = SalesforceConnector(settings=SalesforceSettings(), mappings=mappings)

    error = _rejection(connector, outbound_message())

    assert error.status_code == 503
    assert "OPSROUTE_SALESFORCE_ORG_IDS" in str(error)
    assert connector.webhook_secret_setting() == "OPSROUTE_SALESFORCE_ORG_IDS"


def test_session_id_is_never_in_errors(connector: SalesforceConnector) -> None:
    error = _rejection(connector, outbound_message(org_id="00D5g000009QqQqEAK"))

    assert "secret.session" not in str(error)


# Write-back

QUEUE_ID = "00G5g000003AbCdEAK"


@pytest.fixture
def fake_salesforce(tmp_path: Path) -> Iterator[FakeSalesforce]:
    with FakeSalesforce(certificate_dir=tmp_path, lifetime_seconds=60) as fake:
        yield fake


@pytest.fixture
def writer(
    fake_salesforce: FakeSalesforce, mappings: MappingSet
) -> SalesforceConnector:
    settings = SalesforceSettings(
        instance_url=fake_salesforce.url,
        session_id=SecretStr(fake_salesforce.session_id),
        timeout_seconds=5,
    )
    return SalesforceConnector(
        settings=settings,
        mappings=mappings,
        http_session=fake_salesforce.client_session(),
    )


def _action(**changes: object) -> Action:
    values: dict[str, object] = {
        "system": "salesforce",
        "ticket_key": f"salesforce:{CASES[0]['CaseNumber']}",
        "record_id": CASES[0]["Id"],
        "payload": {"group": "Hardware", "reason": "Laptop keyword, confidence 0.91."},
    }
    values.update(changes)
    return Action(**values)  # type: ignore[arg-type]


def test_deliver_sets_owner_and_comment(
    writer: SalesforceConnector, fake_salesforce: FakeSalesforce
) -> None:
    fake_salesforce.add_case(dict(CASES[0]))
    fake_salesforce.add_queue("Hardware Queue", QUEUE_ID)

    result = writer.deliver(_action())

    comments = fake_salesforce.case_comments
    assert result.marker_found is False
    assert fake_salesforce.cases[CASES[0]["Id"]]["OwnerId"] == QUEUE_ID
    assert len(comments) == 1
    assert comments[0]["IsPublished"] is False
    assert "[opsroute:action:1:3f9c2a]" in comments[0]["CommentBody"]


def test_second_deliver_finds_marker(
    writer: SalesforceConnector, fake_salesforce: FakeSalesforce
) -> None:
    fake_salesforce.add_case(dict(CASES[0]))
    fake_salesforce.add_queue("Hardware Queue", QUEUE_ID)
    writer.deliver(_action())

    again = writer.deliver(_action())

    assert again.marker_found is True
    assert len(fake_salesforce.writes()) == 2
    assert len(fake_salesforce.case_comments) == 1


def test_case_found_by_number(
    writer: SalesforceConnector, fake_salesforce: FakeSalesforce
) -> None:
    fake_salesforce.add_case(dict(CASES[0]))
    fake_salesforce.add_queue("Hardware Queue", QUEUE_ID)

    result = writer.deliver(_action(record_id=None))

    assert result.details["case_id"] == CASES[0]["Id"]


def test_unknown_queue_is_permanent(
    writer: SalesforceConnector, fake_salesforce: FakeSalesforce
) -> None:
    fake_salesforce.add_case(dict(CASES[0]))

    with pytest.raises(PermanentDeliveryError) as caught:
        writer.deliver(_action())

    assert "Hardware Queue" in str(caught.value)
    assert fake_salesforce.writes() == []


def test_request_limit_is_retryable(
    writer: SalesforceConnector, fake_salesforce: FakeSalesforce
) -> None:
    fake_salesforce.fail_next(
        403,
        document=[
            {
                "message": "TotalRequests Limit exceeded.",
                "errorCode": "REQUEST_LIMIT_EXCEEDED",
            }
        ],
    )

    with pytest.raises(RetryableDeliveryError):
        writer.deliver(_action())


def test_503_is_retryable(
    writer: SalesforceConnector, fake_salesforce: FakeSalesforce
) -> None:
    fake_salesforce.fail_next(503)

    with pytest.raises(RetryableDeliveryError):
        writer.deliver(_action())


def test_expired_session_is_permanent(
    fake_salesforce: FakeSalesforce, mappings: MappingSet
) -> None:
    settings = SalesforceSettings(
        instance_url=fake_salesforce.url, session_id=SecretStr("expired-session")
    )
    connector = SalesforceConnector(
        settings=settings,
        mappings=mappings,
        http_session=fake_salesforce.client_session(),
    )

    with pytest.raises(PermanentDeliveryError) as caught:
        connector.deliver(_action())

    assert "HTTP 401" in str(caught.value)
    assert "expired-session" not in str(caught.value)


def test_first_attempt_comments_without_querying_comments(
    writer: SalesforceConnector, fake_salesforce: FakeSalesforce
) -> None:
    fake_salesforce.add_case(dict(CASES[0]))
    fake_salesforce.add_queue("Hardware Queue", QUEUE_ID)

    result = writer.deliver(_action(first_attempt=True))

    queries = [
        call
        for call in fake_salesforce.calls_to("GET", "/query")
        if "CaseComment" in (call.param("q") or "")
    ]
    assert result.marker_found is False
    assert queries == []
    assert len(fake_salesforce.case_comments) == 1


def _password_connector(
    fake_salesforce: FakeSalesforce, mappings: MappingSet, *, password: str
) -> SalesforceConnector:
    fake_salesforce.add_login("integration@example.com", "correct-horse" + "TOKEN42")
    settings = SalesforceSettings(
        username="integration@example.com",
        password=SecretStr(password),
        security_token=SecretStr("TOKEN42"),
        timeout_seconds=5,
    )
    return SalesforceConnector(
        settings=settings,
        mappings=mappings,
        http_session=fake_salesforce.login_session(),
    )


def test_expired_password_session_logs_in_once_more(
    fake_salesforce: FakeSalesforce, mappings: MappingSet
) -> None:
    fake_salesforce.add_case(dict(CASES[0]))
    fake_salesforce.add_queue("Hardware Queue", QUEUE_ID)
    connector = _password_connector(fake_salesforce, mappings, password="correct-horse")
    connector.deliver(_action())
    first_session = fake_salesforce.session_id
    fake_salesforce.expire_session()

    result = connector.deliver(_action(marker="opsroute:action:2:5d1e7b", id=2))

    logins = fake_salesforce.calls_to("POST", "/services/Soap/u/")
    assert result.marker_found is False
    assert len(logins) == 2
    assert fake_salesforce.session_id != first_session
    assert len(fake_salesforce.case_comments) == 2


def test_wrong_password_is_permanent_and_not_shown(
    fake_salesforce: FakeSalesforce, mappings: MappingSet
) -> None:
    fake_salesforce.add_case(dict(CASES[0]))
    connector = _password_connector(fake_salesforce, mappings, password="wrong-horse")

    with pytest.raises(PermanentDeliveryError) as caught:
        connector.deliver(_action())

    assert "wrong-horse" not in str(caught.value)
    assert "TOKEN42" not in str(caught.value)
