"""ServiceNow polling, assignment and checks through pysnow against the fake."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from connectors.base import PollRetryPolicy
from connectors.servicenow import ServiceNowConnector, encoded_query_value
from connectors.servicenow_polling import burst_query, range_query
from connectors.settings import ServiceNowSettings
from router.intake import PermanentDeliveryError
from router.intake.plugin import PollError
from router.mapping import MappingSet
from router.sandbox.servicenow import FakeServiceNow

SINCE = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
FAST_RETRIES = PollRetryPolicy(attempts=3, base_seconds=0.01, max_sleep_seconds=1.0)


def make_connector(
    fake: FakeServiceNow,
    mappings: MappingSet,
    *,
    password: str | None = None,
    page_size: int = 3,
    table: str = "incident",
) -> ServiceNowConnector:
    settings = ServiceNowSettings(
        instance=fake.url,
        user=fake.user,
        password=SecretStr(password or fake.password),
        timeout_seconds=5,
        poll_page_size=page_size,
        table=table,
    )
    connector = ServiceNowConnector(settings=settings, mappings=mappings)
    connector.retry_policy = FAST_RETRIES
    return connector


def add_incidents(fake: FakeServiceNow, times: list[str]) -> list[str]:
    sys_ids = []
    for number, updated in enumerate(times, start=1):
        record = fake.add_record(
            "incident",
            {
                "number": f"INC{number:07d}",
                "short_description": f"Printer {number} jams",
                "assignment_group": "",
                "sys_updated_on": updated,
            },
        )
        sys_ids.append(record["sys_id"])
    return sys_ids


@pytest.fixture
def connector(
    fake_servicenow: FakeServiceNow, mappings: MappingSet
) -> ServiceNowConnector:
    return make_connector(fake_servicenow, mappings)


def test_poll_reads_every_page_in_order(
    connector: ServiceNowConnector, fake_servicenow: FakeServiceNow
) -> None:
    times = [f"2026-11-30 08:0{minute}:00" for minute in range(7)]
    add_incidents(fake_servicenow, list(reversed(times)))

    polled = list(connector.poll(SINCE))

    assert [record.updated_at.minute for record in polled] == list(range(7))
    assert len(fake_servicenow.calls_to("GET", "/table/incident")) >= 3


def test_poll_skips_records_before_since(
    connector: ServiceNowConnector, fake_servicenow: FakeServiceNow
) -> None:
    add_incidents(fake_servicenow, ["2026-11-30 07:59:59", "2026-11-30 08:00:00"])

    polled = list(connector.poll(SINCE))

    assert [record.event.record["number"] for record in polled] == ["INC0000002"]


def test_poll_burst_across_pages_loses_nothing(
    connector: ServiceNowConnector, fake_servicenow: FakeServiceNow
) -> None:
    burst = ["2026-11-30 08:05:00"] * 7 + ["2026-11-30 08:06:00"]
    sys_ids = add_incidents(fake_servicenow, burst)

    polled = [record.event.record_key for record in connector.poll(SINCE)]

    assert sorted(polled) == sorted(sys_ids)
    assert len(polled) == len(set(polled))
    burst_queries = [
        call.param("sysparm_query")
        for call in fake_servicenow.calls_to("GET", "/table/incident")
        if "sys_id>" in (call.param("sysparm_query") or "")
    ]
    assert burst_queries


def test_poll_event_carries_mod_count_version(
    connector: ServiceNowConnector, fake_servicenow: FakeServiceNow
) -> None:
    add_incidents(fake_servicenow, ["2026-11-30 08:01:00"])

    (record,) = list(connector.poll(SINCE))

    assert record.event.record_version == "0"
    assert record.event.event_type == "poll"
    assert record.event.record["table"] == "incident"


def test_poll_retries_after_429_with_retry_after(
    connector: ServiceNowConnector, fake_servicenow: FakeServiceNow
) -> None:
    add_incidents(fake_servicenow, ["2026-11-30 08:01:00"])
    fake_servicenow.fail_next(429, headers={"Retry-After": "0"})

    polled = list(connector.poll(SINCE))

    assert len(polled) == 1
    assert len(fake_servicenow.calls_to("GET", "/table/incident")) == 2


def test_poll_long_retry_after_stops_the_poll(
    connector: ServiceNowConnector, fake_servicenow: FakeServiceNow
) -> None:
    fake_servicenow.fail_next(503, headers={"Retry-After": "120"})

    with pytest.raises(PollError) as caught:
        list(connector.poll(SINCE))

    assert caught.value.retry_after == 120.0
    assert len(fake_servicenow.calls_to("GET", "/table/incident")) == 1


def test_poll_gives_up_after_capped_5xx_retries(
    connector: ServiceNowConnector, fake_servicenow: FakeServiceNow
) -> None:
    fake_servicenow.fail_next(500, times=5)

    with pytest.raises(PollError) as caught:
        list(connector.poll(SINCE))

    assert "after 3 attempts" in str(caught.value)
    assert "HTTP 500" in str(caught.value)
    assert len(fake_servicenow.calls_to("GET", "/table/incident")) == 3


def test_poll_401_names_credential_settings(
    fake_servicenow: FakeServiceNow, mappings: MappingSet
) -> None:
    connector = make_connector(fake_servicenow, mappings, password="pw-7QxZ")

    with pytest.raises(PollError) as caught:
        list(connector.poll(SINCE))

    message = str(caught.value)
    assert "rejected the credentials (HTTP 401)" in message
    assert "OPSROUTE_SERVICENOW_PASSWORD" in message
    assert "pw-7QxZ" not in message


def test_range_query_has_one_condition() -> None:
    query = range_query(SINCE, inclusive=True)

    assert query == (
        "sys_updated_on>=2026-11-30 08:00:00^ORDERBYsys_updated_on^ORDERBYsys_id"
    )


def test_burst_query_rejects_injected_sys_id() -> None:
    with pytest.raises(ValueError, match="32 hexadecimal"):
        burst_query(SINCE, after_id="0" * 31 + "^NQactive=true")


def test_encoded_query_rejects_caret_in_group() -> None:
    with pytest.raises(PermanentDeliveryError, match="encoded queries"):
        encoded_query_value("Ops^NQname!=x", what="group name")


def test_group_with_equals_sign_matches_literally(
    connector: ServiceNowConnector, fake_servicenow: FakeServiceNow
) -> None:
    wanted = fake_servicenow.add_group("R=D")
    fake_servicenow.add_group("R")

    assert connector._group_sys_id("R=D") == wanted


def test_assignment_reads_reference_shapes(connector: ServiceNowConnector) -> None:
    linked = connector.assignment(
        {"assignment_group": {"link": "https://x/api", "value": "a" * 32}}
    )
    displayed = connector.assignment(
        {"assignment_group": {"display_value": "Network", "value": "b" * 32}}
    )
    empty = connector.assignment({"assignment_group": ""})

    assert linked.identifiers == frozenset({"a" * 32})
    assert displayed.group == "Network"
    assert displayed.identifiers == frozenset({"Network", "b" * 32})
    assert empty.group is None
    assert empty.identifiers == frozenset()


def test_assignment_sees_triage_group_by_name(
    connector: ServiceNowConnector,
) -> None:
    assignment = connector.assignment(
        {"assignment_group": "c" * 32, "assignment_group_name": "Service Desk"}
    )

    assert assignment.sent_back is True


def test_assignment_sees_triage_group_by_sys_id(
    connector: ServiceNowConnector, fake_servicenow: FakeServiceNow
) -> None:
    triage_id = fake_servicenow.add_group("Service Desk")

    assignment = connector.assignment({"assignment_group": triage_id})

    assert assignment.sent_back is True


def test_assignment_marks_integration_user(
    connector: ServiceNowConnector, fake_servicenow: FakeServiceNow
) -> None:
    ours = connector.assignment({"sys_updated_by": fake_servicenow.user})
    theirs = connector.assignment({"sys_updated_by": "ana.lopez"})

    assert ours.by_integration is True
    assert theirs.by_integration is False
    assert theirs.changed_by == "ana.lopez"


def test_check_passes_with_good_setup(
    connector: ServiceNowConnector, fake_servicenow: FakeServiceNow
) -> None:
    fake_servicenow.add_group("Service Desk")

    results = connector.check()

    assert [result.ok for result in results] == [True, True, True, True]


def test_check_reports_bad_password(
    fake_servicenow: FakeServiceNow, mappings: MappingSet
) -> None:
    connector = make_connector(fake_servicenow, mappings, password="pw-7QxZ")

    first = connector.check()[0]

    assert first.ok is False
    assert "user name or password is wrong" in first.message


def test_check_reports_missing_role(
    connector: ServiceNowConnector, fake_servicenow: FakeServiceNow
) -> None:
    fake_servicenow.forbidden_tables.add("sys_journal_field")

    results = {result.name: result for result in connector.check()}

    journal = results["read work notes (sys_journal_field)"]
    assert journal.ok is False
    assert "lacks a role" in journal.message


def test_check_reports_unknown_table(
    fake_servicenow: FakeServiceNow, mappings: MappingSet
) -> None:
    connector = make_connector(fake_servicenow, mappings, table="u_tickets")

    first = connector.check()[0]

    assert first.ok is False
    assert "has no table 'u_tickets'" in first.message
    assert "OPSROUTE_SERVICENOW_TABLE" in first.message


def test_check_reports_missing_triage_group(
    connector: ServiceNowConnector,
) -> None:
    results = {result.name: result for result in connector.check()}

    triage = results["triage group 'Service Desk'"]
    assert triage.ok is False
    assert "no group named 'Service Desk'" in triage.message


def test_poll_unreachable_instance_fails(mappings: MappingSet) -> None:
    with FakeServiceNow(lifetime_seconds=10) as fake:
        connector = make_connector(fake, mappings)
    # The fake is stopped, so nothing listens on its port any more.

    with pytest.raises(PollError) as caught:
        list(connector.poll(SINCE))

    assert "ConnectionError" in str(caught.value)
    assert "after 3 attempts" in str(caught.value)


def test_partial_webhook_record_is_reread(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    mappings: MappingSet,
) -> None:
    (sys_id,) = add_incidents(fake_servicenow, ["2026-11-30 08:01:00"])

    ticket = connector.to_ticket(
        {"sys_id": sys_id, "table": "incident", "priority": "2"}, mappings=mappings
    )

    assert ticket.external_id == "INC0000001"
    assert ticket.title == "Printer 1 jams"
    assert ticket.priority == 2


def test_complete_webhook_record_is_not_reread(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    mappings: MappingSet,
) -> None:
    record = {
        "sys_id": "d" * 32,
        "number": "INC0000009",
        "short_description": "Mailbox full",
    }

    ticket = connector.to_ticket(record, mappings=mappings)

    assert ticket.title == "Mailbox full"
    assert fake_servicenow.calls == []


def test_failed_reread_routes_posted_fields(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    mappings: MappingSet,
) -> None:
    fake_servicenow.fail_next(500)
    record = {"sys_id": "e" * 32, "number": "INC0000010"}

    ticket = connector.to_ticket(record, mappings=mappings)

    assert ticket.external_id == "INC0000010"
    assert len(fake_servicenow.calls) == 1
