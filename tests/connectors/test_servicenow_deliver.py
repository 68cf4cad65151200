"""ServiceNow write-back through pysnow against the fake Table API."""

from __future__ import annotations

import pytest
from connector_support import Action
from pydantic import SecretStr

from connectors.servicenow import ServiceNowConnector, encoded_query_value
from connectors.settings import ServiceNowSettings
from router.intake import PermanentDeliveryError, RetryableDeliveryError
from router.mapping import MappingSet
from router.sandbox.servicenow import FakeServiceNow

SYS_ID = "4f1c2e3d5a6b7c8d9e0f1a2b3c4d5e6f"


@pytest.fixture
def connector(
    fake_servicenow: FakeServiceNow, mappings: MappingSet
) -> ServiceNowConnector:
    settings = ServiceNowSettings(
        instance=fake_servicenow.url,
        user=fake_servicenow.user,
        password=SecretStr(fake_servicenow.password),
        timeout_seconds=5,
    )
    return ServiceNowConnector(settings=settings, mappings=mappings)


@pytest.fixture
def incident(fake_servicenow: FakeServiceNow) -> dict[str, str]:
    return fake_servicenow.add_record(
        "incident",
        {"sys_id": SYS_ID, "number": "INC0000042", "assignment_group": ""},
    )


def _action(**changes: object) -> Action:
    values: dict[str, object] = {
        "system": "servicenow",
        "ticket_key": "servicenow:INC0000042",
        "record_id": SYS_ID,
        "payload": {"group": "HDFS", "reason": "Model confidence 0.93 for HDFS."},
    }
    values.update(changes)
    return Action(**values)  # type: ignore[arg-type]


def test_deliver_writes_group_and_marker(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    group_id = fake_servicenow.add_group("HDFS Storage")
    action = _action()

    result = connector.deliver(action)

    writes = fake_servicenow.writes()
    assert result.marker_found is False
    assert len(writes) == 1
    assert writes[0].method == "PATCH"
    assert writes[0].json()["assignment_group"] == group_id
    assert action.marker in writes[0].json()["work_notes"]
    assert fake_servicenow.record("incident", SYS_ID)["assignment_group"] == group_id


def test_note_has_reason_and_marker(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    fake_servicenow.add_group("HDFS Storage")

    connector.deliver(_action())

    notes = fake_servicenow.journal(SYS_ID)
    assert len(notes) == 1
    assert "Model confidence 0.93 for HDFS." in notes[0]
    assert "[opsroute:action:1:3f9c2a]" in notes[0]


def test_second_deliver_finds_marker(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    fake_servicenow.add_group("HDFS Storage")
    connector.deliver(_action())

    again = connector.deliver(_action())

    assert again.marker_found is True
    assert len(fake_servicenow.writes()) == 1
    assert len(fake_servicenow.journal(SYS_ID)) == 1


def test_new_connector_finds_marker_too(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
    mappings: MappingSet,
) -> None:
    fake_servicenow.add_group("HDFS Storage")
    connector.deliver(_action())
    restarted = ServiceNowConnector(settings=connector.settings, mappings=mappings)

    again = restarted.deliver(_action())

    assert again.marker_found is True
    assert len(fake_servicenow.writes()) == 1


def test_group_lookup_is_cached(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    fake_servicenow.add_group("HDFS Storage")

    connector.deliver(_action(marker="opsroute:action:1:a"))
    connector.deliver(_action(marker="opsroute:action:2:b", id=2))

    assert len(fake_servicenow.calls_to("GET", "/sys_user_group")) == 1


def test_target_name_overrides_taxonomy(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    group_id = fake_servicenow.add_group("Storage Night Shift")
    payload = {"group": "HDFS", "target": "Storage Night Shift", "reason": "r"}

    connector.deliver(_action(payload=payload))

    assert fake_servicenow.writes()[0].json()["assignment_group"] == group_id


def test_note_only_action_keeps_group(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    connector.deliver(_action(payload={"reason": "Sent to review: low confidence."}))

    written = fake_servicenow.writes()[0].json()
    assert "assignment_group" not in written
    assert "low confidence" in written["work_notes"]


def test_record_found_by_number(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    fake_servicenow.add_group("HDFS Storage")

    result = connector.deliver(_action(record_id=None))

    assert result.details["sys_id"] == SYS_ID
    assert len(fake_servicenow.journal(SYS_ID)) == 1


def test_unknown_group_is_permanent(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        connector.deliver(_action())

    assert "HDFS Storage" in str(caught.value)
    assert fake_servicenow.writes() == []


def test_group_missing_from_taxonomy_is_permanent(
    connector: ServiceNowConnector, incident: dict[str, str]
) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        connector.deliver(_action(payload={"group": "NOPE", "reason": "r"}))

    assert "taxonomy.yaml" in str(caught.value)


def test_503_is_retryable(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    fake_servicenow.add_group("HDFS Storage")
    fake_servicenow.fail_next(503, headers={"Retry-After": "7"})

    with pytest.raises(RetryableDeliveryError) as caught:
        connector.deliver(_action())

    assert caught.value.retry_after == 7.0
    assert fake_servicenow.writes() == []


def test_503_on_update_is_retried(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    fake_servicenow.add_group("HDFS Storage")
    fake_servicenow.fail_next(503, method="PATCH")
    with pytest.raises(RetryableDeliveryError):
        connector.deliver(_action())

    result = connector.deliver(_action())

    assert result.marker_found is False
    assert len(fake_servicenow.journal(SYS_ID)) == 1


def test_429_is_retryable(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    fake_servicenow.fail_next(429)

    with pytest.raises(RetryableDeliveryError):
        connector.deliver(_action())


def test_400_is_permanent(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    fake_servicenow.add_group("HDFS Storage")
    fake_servicenow.fail_next(
        400,
        method="PATCH",
        document={"error": {"message": "Invalid field", "detail": "x"}},
    )

    with pytest.raises(PermanentDeliveryError) as caught:
        connector.deliver(_action())

    assert "HTTP 400" in str(caught.value)
    assert "Invalid field" in str(caught.value)


def test_bad_password_is_permanent(
    fake_servicenow: FakeServiceNow, mappings: MappingSet, incident: dict[str, str]
) -> None:
    settings = ServiceNowSettings(
        instance=fake_servicenow.url, user="opsroute", password=SecretStr("wrong")
    )
    connector = ServiceNowConnector(settings=settings, mappings=mappings)

    with pytest.raises(PermanentDeliveryError) as caught:
        connector.deliver(_action())

    assert "HTTP 401" in str(caught.value)
    assert "wrong" not in str(caught.value)


def test_unreachable_instance_is_retryable(mappings: MappingSet) -> None:
    fake = FakeServiceNow().start()
    url = fake.url
    fake.stop()
    settings = ServiceNowSettings(
        instance=url, user="u", password=SecretStr("p"), timeout_seconds=2
    )
    connector = ServiceNowConnector(settings=settings, mappings=mappings)

    with pytest.raises(RetryableDeliveryError):
        connector.deliver(_action())


def test_missing_credentials_wait(mappings: MappingSet) -> None:
    connector = ServiceNowConnector(settings=ServiceNowSettings(), mappings=mappings)

    with pytest.raises(RetryableDeliveryError) as caught:
        connector.deliver(_action())

    assert connector.can_write() is False
    assert "OPSROUTE_SERVICENOW_INSTANCE" in str(caught.value)


def test_caret_in_query_value_is_rejected() -> None:
    with pytest.raises(PermanentDeliveryError):
        encoded_query_value("Storage^ORname=Admins", what="group name")


def test_first_attempt_writes_without_reading_the_journal(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    fake_servicenow.add_group("HDFS Storage")

    result = connector.deliver(_action(first_attempt=True))

    assert result.marker_found is False
    assert fake_servicenow.calls_to("GET", "/sys_journal_field") == []
    assert len(fake_servicenow.writes()) == 1
    assert len(fake_servicenow.journal(SYS_ID)) == 1


def _acknowledgement(user: str | None) -> Action:
    payload: dict[str, object] = {
        "reason": "Ada Lovelace acknowledged the escalation in Slack.",
        "assign_to_person": True,
        "on_behalf_of": {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "slack_user_id": "U0ADA",
            "user": user,
        },
    }
    return _action(payload=payload, marker="opsroute:ack:4", first_attempt=True)


def test_acknowledgement_sets_assigned_to(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    ada = fake_servicenow.add_user("ada.lovelace")
    fake_servicenow.add_user("alan.turing")

    result = connector.deliver(_acknowledgement("ada.lovelace"))

    record = fake_servicenow.record("incident", SYS_ID)
    (note,) = fake_servicenow.journal(SYS_ID)
    assert record["assigned_to"] == ada
    assert result.details["assigned_to"] == ada
    assert "Ada Lovelace acknowledged" in note
    assert "[opsroute:ack:4]" in note


def test_unknown_user_is_named_in_note(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    fake_servicenow.add_user("ada.lovelace", active=False)

    result = connector.deliver(_acknowledgement("ada.lovelace"))

    record = fake_servicenow.record("incident", SYS_ID)
    (note,) = fake_servicenow.journal(SYS_ID)
    assert "assigned_to" not in record
    assert result.details["assigned_to"] is None
    assert "could not make ada.lovelace the assignee" in note
    assert "[opsroute:ack:4]" in note


def test_unmapped_person_keeps_assignee(
    connector: ServiceNowConnector,
    fake_servicenow: FakeServiceNow,
    incident: dict[str, str],
) -> None:
    connector.deliver(_acknowledgement(None))

    record = fake_servicenow.record("incident", SYS_ID)
    assert "assigned_to" not in record
    assert fake_servicenow.calls_to("GET", "/table/sys_user") == []


def test_notification_action_is_permanent(connector: ServiceNowConnector) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        connector.deliver(_action(kind="notification"))

    assert "the ServiceNow connector delivers write_back and task" in str(caught.value)
