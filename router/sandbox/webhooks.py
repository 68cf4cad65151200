"""The webhooks of the sandbox: one signed request per system, as vendors send it."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from router.demo.payloads import (
    DemoRow,
    to_jira_issue,
    to_salesforce_case,
    to_servicenow_record,
)

if TYPE_CHECKING:
    from router.sandbox.run import Fakes

SANDBOX_ORG_ID = "00D5g000004SaNdEAA"

TICKET = DemoRow(
    external_id="SANDBOX-1",
    title="Laptop screen flickers after the docking station update",
    description="The laptop monitor flickers and goes black when docked.",
    priority_name="Major",
)


@dataclass
class RoundTrip:
    """The outcome of one system's webhook: its HTTP status and the write-back."""

    system: str
    ticket: str
    webhook_status: int
    group: str | None = None
    note: str | None = None


def post(base_url: str, path: str, body: bytes, headers: dict[str, str]) -> int:
    """POST a webhook and return the HTTP status."""
    request = urllib.request.Request(
        f"{base_url}{path}", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def signature(body: bytes, secret: str) -> str:
    """Return the `sha256=<hex>` HMAC-SHA256 signature of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def outbound_message(case: dict[str, Any]) -> bytes:
    """Return a Salesforce Outbound Message with one Case notification."""
    fields = "".join(
        f"<sf:{name}>{case[name]}</sf:{name}>"
        for name in ("Id", "CaseNumber", "Subject", "Priority", "Status")
        if case.get(name)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{SANDBOX_ORG_ID}</OrganizationId>"
        "<ActionId>04k5g000000SaNdAAA</ActionId>"
        "<Notification><Id>04l5g00000SaNdEAAV</Id>"
        '<sObject xsi:type="sf:Case" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:SystemModstamp>{case['SystemModstamp']}</sf:SystemModstamp>{fields}"
        "</sObject></Notification></notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


def send_webhooks(base_url: str, fakes: Fakes, secret: str) -> list[RoundTrip]:
    """Seed one ticket per fake and send its webhook to the service."""
    record = fakes.servicenow.add_record("incident", to_servicenow_record(TICKET))
    body = json.dumps(record).encode()
    servicenow = post(
        base_url,
        "/webhooks/servicenow",
        body,
        {
            "Content-Type": "application/json",
            "X-Opsroute-Signature": signature(body, secret),
        },
    )

    issue = fakes.jira.add_issue(to_jira_issue(TICKET))
    webhook = {
        "timestamp": int(datetime.now(UTC).timestamp() * 1000),
        "webhookEvent": "jira:issue_created",
        "issue_event_type_name": "issue_created",
        "issue": issue,
    }
    body = json.dumps(webhook).encode()
    jira = post(
        base_url,
        "/webhooks/jira",
        body,
        {
            "Content-Type": "application/json",
            "X-Hub-Signature": signature(body, secret),
            "X-Atlassian-Webhook-Identifier": secrets.token_hex(8),
        },
    )

    case = fakes.salesforce.add_case(to_salesforce_case(TICKET))
    salesforce = post(
        base_url,
        "/webhooks/salesforce",
        outbound_message(case),
        {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
    )
    return [
        RoundTrip("servicenow", str(record["number"]), servicenow),
        RoundTrip("jira", str(issue["key"]), jira),
        RoundTrip("salesforce", str(case["CaseNumber"]), salesforce),
    ]
