"""The four shipped policies end to end: webhook in, enrichment, effects out.

Each test posts a vendor webhook to the running app. The worker enriches the
ticket from a fake Salesforce and a local JSON server and routes it under the
shipped policies. Then the dispatcher writes back, creates the task and sends the
notifications, to the fake vendor servers and the log notifier.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from enrichment.context_server import ContextServer
from fastapi.testclient import TestClient
from pydantic import SecretStr
from service.support import (
    WEBHOOK_SECRET,
    encode,
    incident,
    service_settings,
    servicenow_connector,
    signed,
    train_small_model,
    wait_for,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.jira import JiraConnector
from connectors.salesforce import SalesforceConnector
from connectors.settings import JiraSettings, SalesforceSettings
from router.classification.model import RoutingModel
from router.classification.registry import save_model
from router.escalation.records import use_mappings
from router.mapping import default_mappings_dir, load_mappings
from router.mapping.transforms import salesforce_id18
from router.sandbox.jira import FakeJira
from router.sandbox.salesforce import FakeSalesforce
from router.sandbox.servicenow import FakeServiceNow
from router.service.app import create_app
from router.service.runtime import ServiceRuntime
from router.store.db import make_engine, session_factory, upgrade
from router.store.models import audit_log, decisions, escalations, outbox_actions

ORG_ID = "00D5g000004XxYzEAK"
ACCOUNT_ID = salesforce_id18("0015e00000QrStU")
HOLD_ACCOUNT_ID = salesforce_id18("0015e00000HoLdA")
FINANCE_QUEUE = salesforce_id18("00G5e000004FinO")
COMMERCIAL_QUEUE = salesforce_id18("00G5e000004ComO")
PREMIUM_TENANT = "globex-prod"


@pytest.fixture(scope="module")
def small_model() -> RoutingModel:
    return train_small_model()


@pytest.fixture
def context_server() -> Iterator[ContextServer]:
    with ContextServer() as server:
        yield server


@pytest.fixture
def fakes(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with (
        FakeServiceNow(lifetime_seconds=120) as snow,
        FakeJira(lifetime_seconds=120) as jira,
        FakeSalesforce(certificate_dir=tmp_path, lifetime_seconds=120) as sfdc,
    ):
        yield {"servicenow": snow, "jira": jira, "salesforce": sfdc}


def enrichment_file(
    server: ContextServer, salesforce: FakeSalesforce
) -> dict[str, Any]:
    base = server.url
    return {
        "version": "test",
        "enrichers": [
            {
                "name": "salesforce-account",
                "kind": "salesforce_account",
                "timeout_seconds": 3,
                "options": {"ca_bundle": str(salesforce.ca_file)},
            },
            {
                "name": "observability",
                "kind": "http",
                "timeout_seconds": 0.5,
                "retries": 0,
                "options": {
                    "url": base + "/tenants/{account}",
                    "fields": {
                        "alert.source": "$.alert.source",
                        "impact.scope": "$.impact.scope",
                        "impact.customers_affected": "$.impact.customers",
                        "account.name": "$.name",
                        "account.tier": "$.tier",
                        "entitlement.name": "$.entitlement",
                        "entitlement.sla_active": "$.sla_active",
                    },
                },
            },
            {
                "name": "erp",
                "kind": "http",
                "timeout_seconds": 1,
                "options": {
                    "url": base + "/orders/{external_id}",
                    "fields": {
                        "order.id": "$.order",
                        "order.handoff_state": "$.handoff.state",
                        "order.target_system": "$.handoff.target",
                        "order.failed_step": "$.handoff.failed_step",
                    },
                },
            },
            {
                "name": "billing",
                "kind": "http",
                "timeout_seconds": 1,
                "options": {
                    "url": base + "/billing/{account}",
                    "fields": {
                        "finance_hold": "$.finance_hold",
                        "seats.in_use": "$.seats.in_use",
                        "seats.requested": "$.seats.pending_invites",
                    },
                },
            },
        ],
    }


@pytest.fixture
def runtime(
    database_url: str,
    tmp_path: Path,
    small_model: RoutingModel,
    fakes: dict[str, Any],
    context_server: ContextServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ServiceRuntime]:
    salesforce: FakeSalesforce = fakes["salesforce"]
    monkeypatch.setenv("OPSROUTE_SALESFORCE_INSTANCE_URL", salesforce.url)
    monkeypatch.setenv("OPSROUTE_SALESFORCE_SESSION_ID", salesforce.session_id)
    monkeypatch.delenv("OPSROUTE_NOTIFIER", raising=False)

    folder = tmp_path / "mappings"
    shutil.copytree(str(default_mappings_dir()), folder)
    (folder / "enrichment.yaml").write_text(
        yaml.safe_dump(enrichment_file(context_server, salesforce))
    )
    mappings = load_mappings(folder)

    engine = make_engine(database_url)
    upgrade(engine)
    with session_factory(engine).begin() as session:
        save_model(session, small_model, activate=True)
    engine.dispose()

    jira: FakeJira = fakes["jira"]
    connectors = {
        ("servicenow", "default"): servicenow_connector(
            api_url=fakes["servicenow"].url, mappings=mappings
        ),
        ("jira", "default"): JiraConnector(
            settings=JiraSettings(
                webhook_secret=SecretStr(WEBHOOK_SECRET),
                url=jira.url,
                user=jira.user,
                api_token=SecretStr(jira.token),
                timeout_seconds=5,
            ),
            mappings=mappings,
        ),
        ("salesforce", "default"): SalesforceConnector(
            settings=SalesforceSettings(
                org_ids=ORG_ID,
                instance_url=salesforce.url,
                session_id=SecretStr(salesforce.session_id),
            ),
            mappings=mappings,
            http_session=salesforce.client_session(),
        ),
    }
    service = ServiceRuntime(
        service_settings(database_url, tmp_path),
        connectors=connectors,
        mappings=mappings,
    )
    yield service
    use_mappings(None)


@pytest.fixture
def client(runtime: ServiceRuntime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=runtime)) as test_client:
        if not wait_for(lambda: runtime.readiness()[0], timeout=30):
            pytest.fail(f"The service did not get ready: {runtime.readiness()[1]}")
        yield test_client


def actions_done(store: sessionmaker[Session], ticket_key: str, count: int) -> bool:
    with store() as session:
        rows = session.execute(
            select(outbox_actions.c.status).where(
                outbox_actions.c.ticket_key == ticket_key
            )
        ).all()
    return len(rows) >= count and all(row.status == "done" for row in rows)


def outbox(store: sessionmaker[Session], ticket_key: str) -> list[Any]:
    with store() as session:
        return list(
            session.execute(
                select(outbox_actions)
                .where(outbox_actions.c.ticket_key == ticket_key)
                .order_by(outbox_actions.c.id)
            ).all()
        )


def states(store: sessionmaker[Session], ticket_key: str) -> list[tuple[str, ...]]:
    return [
        (row.kind, row.status, row.last_error or "")
        for row in outbox(store, ticket_key)
    ]


def audit(store: sessionmaker[Session], ticket_key: str, event: str) -> list[Any]:
    with store() as session:
        return list(
            session.execute(
                select(audit_log).where(
                    audit_log.c.ticket_key == ticket_key, audit_log.c.event == event
                )
            ).all()
        )


@pytest.fixture
def store(runtime: ServiceRuntime) -> sessionmaker[Session]:
    return runtime.session_factory


def case_message(case: dict[str, Any]) -> bytes:
    fields = "".join(f"<sf:{name}>{value}</sf:{name}>" for name, value in case.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{ORG_ID}</OrganizationId>"
        "<ActionId>04k5g000000CbD2AAK</ActionId>"
        "<Notification><Id>04l5g00000AbCdEAAV</Id>"
        '<sObject xsi:type="sf:Case" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"{fields}</sObject></Notification>"
        "</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


def salesforce_case(number: str, case_id: str, account: str, **fields: str) -> dict:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "Id": case_id,
        "CaseNumber": number,
        "Priority": "Medium",
        "Status": "New",
        "AccountId": account,
        "CreatedDate": stamp,
        "SystemModstamp": stamp,
        **fields,
    }


def post_salesforce(client: TestClient, case: dict[str, Any]) -> None:
    response = client.post(
        "/webhooks/salesforce",
        content=case_message(case),
        headers={"Content-Type": "text/xml; charset=utf-8"},
    )
    assert response.status_code == 200, response.text


def test_billing_dispute_end_to_end(
    client: TestClient, store: sessionmaker[Session], fakes: dict[str, Any]
) -> None:
    salesforce: FakeSalesforce = fakes["salesforce"]
    renewal = (date.today() + timedelta(days=30)).isoformat()
    salesforce.accounts[ACCOUNT_ID] = {
        "Id": ACCOUNT_ID,
        "Name": "Initech Holdings",
        "AnnualRevenue": 250000,
        "Tier__c": "enterprise",
        "Renewal_Date__c": renewal,
        "Owner": {"Email": "dana.lopez@example.com"},
    }
    salesforce.add_queue("Finance Operations Queue", FINANCE_QUEUE)
    case_id = salesforce_id18("5005e00000BdDsP")
    case = salesforce_case(
        "00004711",
        case_id,
        ACCOUNT_ID,
        Subject="Duplicate charge on our March invoice",
        Description="We were charged twice for the March subscription.",
    )
    salesforce.add_case(dict(case))
    post_salesforce(client, case)

    key = "salesforce:00004711"
    assert wait_for(lambda: actions_done(store, key, 3), timeout=30), states(store, key)
    kinds = sorted(row.kind for row in outbox(store, key))
    [task] = salesforce.tasks
    [notice] = [row for row in outbox(store, key) if row.kind == "notification"]
    comments = " ".join(row["CommentBody"] for row in salesforce.case_comments)
    assert kinds == ["notification", "task", "write_back"]
    assert salesforce.cases[case_id]["OwnerId"] == FINANCE_QUEUE
    assert task["WhatId"] == case_id
    assert task["Subject"] == "Approve the refund of the duplicate charge in 00004711"
    assert notice.payload["target"] == "account_manager:dana.lopez@example.com"
    assert notice.payload["context"]["account"]["arr"] == 250000
    assert "250000" not in comments
    assert "billing-dispute-high-arr" in comments


def test_seat_overage_end_to_end(
    client: TestClient,
    store: sessionmaker[Session],
    fakes: dict[str, Any],
    context_server: ContextServer,
) -> None:
    salesforce: FakeSalesforce = fakes["salesforce"]
    salesforce.accounts[HOLD_ACCOUNT_ID] = {
        "Id": HOLD_ACCOUNT_ID,
        "Name": "Hooli Iberia",
        "AnnualRevenue": 91000,
        "Tier__c": "growth",
        "Renewal_Date__c": "2027-09-30",
        "Owner": {"Email": "ana.reis@example.com"},
    }
    salesforce.contracts.append(
        {
            "AccountId": HOLD_ACCOUNT_ID,
            "ContractNumber": "00000100",
            "EndDate": "2027-09-30",
            "Seats_Bought__c": 150,
        }
    )
    context_server.documents[f"/billing/{HOLD_ACCOUNT_ID}"] = {
        "finance_hold": True,
        "seats": {"in_use": 148, "pending_invites": 12},
    }
    salesforce.add_queue("Commercial Operations Queue", COMMERCIAL_QUEUE)
    case_id = salesforce_id18("5005e00000CcEeF")
    case = salesforce_case(
        "00005120",
        case_id,
        HOLD_ACCOUNT_ID,
        Subject="Cannot add users for the new Porto team",
        Description="Please give access to 12 new colleagues in Porto.",
    )
    salesforce.add_case(dict(case))
    post_salesforce(client, case)

    key = "salesforce:00005120"
    assert wait_for(lambda: actions_done(store, key, 2), timeout=30), states(store, key)
    [task] = salesforce.tasks
    assert salesforce.cases[case_id]["OwnerId"] == COMMERCIAL_QUEUE
    assert task["Subject"] == "Approve 12 more seats for Hooli Iberia"
    assert "opsroute:task:" in task["Description"]


def test_production_degradation_end_to_end(
    client: TestClient,
    store: sessionmaker[Session],
    fakes: dict[str, Any],
    context_server: ContextServer,
) -> None:
    snow: FakeServiceNow = fakes["servicenow"]
    group_id = snow.add_group("Platform Operations")
    context_server.documents[f"/tenants/{PREMIUM_TENANT}"] = {
        "alert": {"source": "prometheus"},
        "impact": {"scope": "customer", "customers": 42},
        "name": "Globex Corporation",
        "tier": "premium",
        "entitlement": "premium",
        "sla_active": True,
    }
    record = snow.add_record(
        "incident",
        incident(31337)
        | {
            "short_description": "API latency degraded in eu-west: p99 above 2 s",
            "description": "Alert api-latency-p99 fired: error rate 3%.",
            "caller_id": "monitoring-integration",
            "company": PREMIUM_TENANT,
        },
    )
    body = encode(record)
    response = client.post("/webhooks/servicenow", content=body, headers=signed(body))
    assert response.status_code == 200

    key = "servicenow:INC0031337"
    # The write-back, the task and the two notifications of the first level.
    assert wait_for(lambda: actions_done(store, key, 4), timeout=30), states(store, key)
    [task] = snow.tables["incident_task"].values()
    with store() as session:
        escalation = session.execute(select(escalations)).one()
    assert snow.record("incident", record["sys_id"])["assignment_group"] == group_id
    assert task["incident"] == record["sys_id"]
    assert task["short_description"] == "Tell affected customers about INC0031337"
    assert escalation.policy == "premium-incident"
    assert escalation.priority == 1
    assert escalation.entitlement == "premium"
    assert audit(store, key, "escalation_started")


def test_provisioning_failure_end_to_end(
    client: TestClient,
    store: sessionmaker[Session],
    fakes: dict[str, Any],
    context_server: ContextServer,
) -> None:
    jira: FakeJira = fakes["jira"]
    context_server.documents["/orders/HELP-2042"] = {
        "order": "SO-88412",
        "handoff": {
            "state": "failed",
            "target": "ERP",
            "failed_step": "create_subscription_lines",
        },
    }
    issue = {
        "id": "30542",
        "key": "HELP-2042",
        "fields": {
            "summary": "Reporting and Forecasting modules missing after we signed",
            "description": "The Reporting module is still not available.",
            "issuetype": {"name": "Service Request", "subtask": False},
            "priority": {"name": "Medium"},
            "status": {"name": "Open"},
            "project": {"key": "HELP", "projectTypeKey": "software"},
            "components": [],
            "labels": [],
            "created": "2026-06-08T14:05:00.000+0000",
            "updated": "2026-06-08T14:05:00.000+0000",
        },
    }
    jira.add_issue(json.loads(json.dumps(issue)))
    webhook = {
        "timestamp": 1780927500000,
        "webhookEvent": "jira:issue_created",
        "issue_event_type_name": "issue_created",
        "issue": issue,
    }
    body = json.dumps(webhook).encode()
    response = client.post(
        "/webhooks/jira",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature": signed(body)["X-Opsroute-Signature"],
        },
    )
    assert response.status_code == 200, response.text

    key = "jira:HELP-2042"
    assert wait_for(lambda: actions_done(store, key, 2), timeout=30), states(store, key)
    parent = jira.issues["30542"]
    [subtask] = [i for i in jira.issues.values() if i["key"] != "HELP-2042"]
    assert parent["fields"]["components"] == [{"name": "Integration Operations"}]
    assert subtask["fields"]["parent"] == {"key": "HELP-2042"}
    assert "SO-88412" in subtask["fields"]["summary"]
    assert "opsroute:task:" in subtask["fields"]["description"]


def test_hanging_enricher_does_not_stop_routing(
    client: TestClient,
    store: sessionmaker[Session],
    fakes: dict[str, Any],
    context_server: ContextServer,
) -> None:
    context_server.mode = "hang"
    snow: FakeServiceNow = fakes["servicenow"]
    record = snow.add_record("incident", incident(5) | {"company": "initech"})
    body = encode(record)
    client.post("/webhooks/servicenow", content=body, headers=signed(body))

    key = "servicenow:INC0000005"

    def decided() -> bool:
        with store() as session:
            return session.execute(select(decisions.c.id)).first() is not None

    assert wait_for(decided, timeout=30)
    outcomes = {
        row.details["enricher"]: row.details["outcome"]
        for row in audit(store, key, "enrichment")
    }
    [decision] = audit(store, key, "decision")
    assert outcomes["observability"] == "timeout"
    assert decision is not None
