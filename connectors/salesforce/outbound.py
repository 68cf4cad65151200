"""Salesforce Outbound Messages: safe parsing of the SOAP envelope, acks and faults.

An Outbound Message is a SOAP 1.1 POST whose body contains one `notifications` element
(namespace http://soap.sforce.com/2005/09/outbound) with the sending org's
`OrganizationId` and 1 to 100 `Notification` elements, each with its `Id` and an
`sObject` whose fields are `sf:<Field>` elements. Salesforce resends a message until
it gets `notificationsResponse` with `<Ack>true</Ack>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from router.intake.plugin import WebhookError

SOAP_ENVELOPE_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS: Final = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS: Final = "urn:sobject.enterprise.soap.sforce.com"
XSI_NS: Final = "http://www.w3.org/2001/XMLSchema-instance"
SOAP_CONTENT_TYPE: Final = "text/xml; charset=utf-8"

ACK_BODY: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENVELOPE_NS}">'
    "<soapenv:Body>"
    f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack>'
    "</notificationsResponse>"
    "</soapenv:Body></soapenv:Envelope>"
).encode()


@dataclass(frozen=True)
class Notification:
    """One notification of an Outbound Message: its id and the record's fields."""

    notification_id: str
    sobject_type: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class OutboundMessage:
    """The parsed `notifications` element of an Outbound Message."""

    organization_id: str
    action_id: str | None
    notifications: list[Notification]


def soap_fault(message: str, *, server: bool = False) -> bytes:
    """Return a SOAP 1.1 fault whose faultstring is `message`."""
    code = "soapenv:Server" if server else "soapenv:Client"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENVELOPE_NS}">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>{code}</faultcode>"
        f"<faultstring>{escape(message)}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    ).encode()


def outbound_error(message: str, *, status_code: int) -> WebhookError:
    """Return a WebhookError whose response to Salesforce is a SOAP fault."""
    return WebhookError(
        message,
        status_code=status_code,
        response_body=soap_fault(message, server=status_code >= 500),
        response_content_type=SOAP_CONTENT_TYPE,
    )


def parse_envelope(body: bytes) -> Element:
    """Parse the SOAP envelope, rejecting DTDs, entities and external references.

    Raises:
        WebhookError: 400 with the parser's reason and position.
    """
    try:
        # defusedxml rejects any DOCTYPE (forbid_dtd) as well as entity
        # declarations and external references, before anything is expanded.
        return fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise outbound_error(
            f"Salesforce Outbound Message rejected: the XML contains a DTD, an "
            f"entity or an external reference ({type(exc).__name__}), which "
            "Outbound Messages never do; send the SOAP envelope as Salesforce "
            "builds it.",
            status_code=400,
        ) from None
    except ParseError as exc:
        line, column = exc.position
        raise outbound_error(
            f"Salesforce Outbound Message body is invalid XML: {_parser_reason(exc)} "
            f"at line {line} column {column} ({len(body)} bytes received); send "
            "the complete SOAP envelope.",
            status_code=400,
        ) from None


def _parser_reason(exc: ParseError) -> str:
    # expat's message ends with ": line L, column C", which is reported separately.
    return str(exc).split(": line ", 1)[0]


def find_notifications(envelope: Element) -> Element:
    """Return the `notifications` element of a parsed envelope.

    Raises:
        WebhookError: 400 when the document is not an Outbound Message.
    """
    found = envelope.find(f"{{{SOAP_ENVELOPE_NS}}}Body/{{{OUTBOUND_NS}}}notifications")
    if found is None:
        raise outbound_error(
            "Salesforce webhook body is not an Outbound Message: expected "
            f"soapenv:Envelope/soapenv:Body/notifications in namespace {OUTBOUND_NS}.",
            status_code=400,
        )
    return found


def organization_id(notifications: Element) -> str:
    """Return the OrganizationId text of a `notifications` element.

    Raises:
        WebhookError: 400 when it is missing or empty.
    """
    text = _child_text(notifications, "OrganizationId")
    if not text:
        raise outbound_error(
            "Salesforce Outbound Message has no OrganizationId; send the message "
            "as Salesforce builds it.",
            status_code=400,
        )
    return text


def read_message(notifications: Element, *, org_id: str) -> OutboundMessage:
    """Read every Notification of an already allowed `notifications` element.

    Raises:
        WebhookError: 400 for a notification without Id or sObject, or none at all.
    """
    parsed = [
        _read_notification(element, position)
        for position, element in enumerate(
            notifications.findall(f"{{{OUTBOUND_NS}}}Notification"), start=1
        )
    ]
    if not parsed:
        raise outbound_error(
            "Salesforce Outbound Message contains no Notification element.",
            status_code=400,
        )
    return OutboundMessage(
        organization_id=org_id,
        action_id=_child_text(notifications, "ActionId") or None,
        notifications=parsed,
    )


def _read_notification(element: Element, position: int) -> Notification:
    notification_id = _child_text(element, "Id")
    sobject = element.find(f"{{{OUTBOUND_NS}}}sObject")
    if not notification_id or sobject is None:
        raise outbound_error(
            f"Salesforce Outbound Message: Notification {position} has no Id or no "
            "sObject.",
            status_code=400,
        )
    # xsi:type is a QName such as "sf:Case"; the prefix does not matter here.
    sobject_type = sobject.get(f"{{{XSI_NS}}}type", "").rpartition(":")[2]
    fields: dict[str, Any] = {}
    for child in sobject:
        name = child.tag.rpartition("}")[2]
        if child.get(f"{{{XSI_NS}}}nil") == "true":
            fields[name] = None
        else:
            fields[name] = child.text or ""
    return Notification(
        notification_id=notification_id, sobject_type=sobject_type, fields=fields
    )


def _child_text(element: Element, name: str) -> str:
    child = element.find(f"{{{OUTBOUND_NS}}}{name}")
    return (child.text or "").strip() if child is not None else ""
