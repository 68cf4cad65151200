"""Salesforce polling, assignment and checks through simple-salesforce."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.base import PollRetryPolicy
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.polling import poll_soql
from connectors.settings import SalesforceSettings
from router.demo.payloads import DemoRow, to_salesforce_case
from router.intake import PermanentDeliveryError
from router.intake.plugin import PollError
from router.mapping import MappingSet
from router.mapping.transforms import salesforce_id18
from router.sandbox.salesforce import FakeSalesforce, sf_time

SINCE = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
TRIAGE_QUEUE_ID = salesforce_id18("00G5g000001TrIa")
FAST_RETRIES = PollRetryPolicy(attempts=3, base_seconds=0.01, max_sleep_seconds=1.0)


@pytest.fixture
def fake_salesforce(tmp_path: Path) -> Iterator[FakeSalesforce]:
    with FakeSalesforce(certificate_dir=tmp_path, lifetime_seconds=60) as fake:
        yield fake


def make_connector(
    fake: FakeSalesforce, mappings: MappingSet, *, session_id: str | None = None
) -> SalesforceConnector:
    settings = SalesforceSettings(
        instance_url=fake.url,
        session_id=SecretStr(session_id or fake.session_id),
        timeout_seconds=5,
        integration_user_id="005000000000001AAA",
    )
    connector = SalesforceConnector(
        settings=settings, mappings=mappings, http_session=fake.client_session()
    )
    connector.retry_policy = FAST_RETRIES
    return connector


@pytest.fixture
def connector(
    fake_salesforce: FakeSalesforce, mappings: MappingSet
) -> SalesforceConnector:
    return make_connector(fake_salesforce, mappings)


def add_cases(fake: FakeSalesforce, count: int, **fields: Any) -> list[str]:
    ids = []
    for number in range(1, count + 1):
        case = to_salesforce_case(
            DemoRow(external_id=f"HELP-{number}", title=f"Laptop {number}")
        )
        case["SystemModstamp"] = sf_time(SINCE + timedelta(minutes=number))
        case.update(fields)
        fake.add_case(case)
        ids.append(case["Id"])
    return ids


def test_poll_follows_next_records_url(
    connector: SalesforceConnector, fake_salesforce: FakeSalesforce
) -> None:
    ids = add_cases(fake_salesforce, 5)
    fake_salesforce.batch_size = 2

    polled = [record.event.record_key for record in connector.poll(SINCE)]

    assert polled == ids
    more = [call for call in fake_salesforce.calls if "/query/01g" in call.path]
    assert len(more) == 2


def test_poll_soql_orders_by_modstamp_and_id() -> None:
    soql = poll_soql(SINCE)

    assert "WHERE SystemModstamp >= 2026-11-30T08:00:00+00:00" in soql
    assert soql.endswith("ORDER BY SystemModstamp ASC, Id ASC")


def test_poll_keys_cases_by_18_char_id(
    connector: SalesforceConnector, fake_salesforce: FakeSalesforce
) -> None:
    (case_id,) = add_cases(fake_salesforce, 1)
    case = fake_salesforce.cases.pop(case_id)
    case["Id"] = case_id[:15]
    fake_salesforce.add_case(case)

    (record,) = list(connector.poll(SINCE))

    assert record.event.record_key == case_id
    assert record.event.record_version == case["SystemModstamp"]


def test_poll_request_limit_is_a_pause(
    connector: SalesforceConnector, fake_salesforce: FakeSalesforce
) -> None:
    fake_salesforce.fail_next(
        403,
        document=[{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "limit"}],
    )

    with pytest.raises(PollError) as caught:
        list(connector.poll(SINCE))

    assert caught.value.retry_after == 900.0
    assert "request limit" in str(caught.value)
    assert "credentials" not in str(caught.value)


def test_poll_rejected_session_names_setting(
    fake_salesforce: FakeSalesforce, mappings: MappingSet
) -> None:
    connector = make_connector(fake_salesforce, mappings, session_id="00Dx!expired")

    with pytest.raises(PollError) as caught:
        list(connector.poll(SINCE))

    assert "OPSROUTE_SALESFORCE_SESSION_ID" in str(caught.value)
    assert "00Dx!expired" not in str(caught.value)


def test_queue_name_quote_cannot_widen_soql(
    connector: SalesforceConnector, fake_salesforce: FakeSalesforce
) -> None:
    fake_salesforce.add_queue("Tier 1", "00G5g000001AbCdAAA")

    with pytest.raises(PermanentDeliveryError, match="no queue"):
        connector._queue_id("x' OR Name != '")

    (query,) = [call.param("q") for call in fake_salesforce.calls]
    assert "Name = 'x\\' OR Name != \\''" in (query or "")


def test_assignment_sees_triage_queue_by_name(
    connector: SalesforceConnector,
) -> None:
    assignment = connector.assignment(
        {"OwnerId": TRIAGE_QUEUE_ID, "Owner": {"Name": "Triage Queue"}}
    )

    assert assignment.sent_back is True
    assert assignment.group == "Triage Queue"


def test_assignment_resolves_triage_queue_id(
    connector: SalesforceConnector, fake_salesforce: FakeSalesforce
) -> None:
    fake_salesforce.add_queue("Triage Queue", TRIAGE_QUEUE_ID)

    assignment = connector.assignment({"OwnerId": TRIAGE_QUEUE_ID[:15]})

    assert assignment.sent_back is True
    assert assignment.identifiers == frozenset({TRIAGE_QUEUE_ID})


def test_assignment_marks_integration_user(connector: SalesforceConnector) -> None:
    ours = connector.assignment({"LastModifiedById": "005000000000001"})
    theirs = connector.assignment({"LastModifiedById": "005000000000002AAA"})

    assert ours.by_integration is True
    assert theirs.by_integration is False


def test_check_reports_missing_queue(connector: SalesforceConnector) -> None:
    results = {result.name: result for result in connector.check()}

    assert results["read Cases"].ok is True
    assert results["read case comments"].ok is True
    assert results["triage queue 'Triage Queue'"].ok is False
    assert "no queue named 'Triage Queue'" in (
        results["triage queue 'Triage Queue'"].message
    )


def test_check_reports_bad_session(
    fake_salesforce: FakeSalesforce, mappings: MappingSet
) -> None:
    connector = make_connector(fake_salesforce, mappings, session_id="00Dx!bad")

    (result,) = connector.check()

    assert result.ok is False
    assert "rejected the credentials" in result.message
