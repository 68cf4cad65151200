"""Normalizing ServiceNow, Jira and Salesforce records into Tickets."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from router.mapping import (
    MappingSet,
    NormalizationError,
    SystemMapping,
    normalize_record,
)

GROUP_SYS_ID = "287ebd7da9fe198100f92cc8d1d2154e"


def _incident(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "sys_id": "9d385017c611228701d22104cc95c371",
        "number": "INC0010041",
        "short_description": "Printer on floor 3 jams",
        "description": "Paper jams on every print job.",
        "priority": "3",
        "urgency": "2",
        "impact": "2",
        "category": "hardware",
        "subcategory": "",
        "state": "2",
        "assignment_group": "",
        "caller_id": "",
        "company": "",
        "sys_created_on": "2024-01-15 10:22:33",
        "sys_updated_on": "2024-01-15 11:00:00",
    }
    record.update(changes)
    return record


def _issue(**field_changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "summary": "NameNode fails over twice",
        "description": "Both NameNodes switch roles within a minute.",
        "issuetype": {"id": "1", "name": "Bug", "subtask": False},
        "priority": {"id": "2", "name": "Critical"},
        "status": {"name": "Open", "statusCategory": {"key": "new"}},
        "project": {"key": "HDFS", "name": "Hadoop HDFS"},
        "labels": ["ha"],
        "reporter": None,
        "created": "2019-06-13T12:51:49.131+0300",
        "updated": "2019-06-13T13:00:00.000+0300",
    }
    fields.update(field_changes)
    return {
        "id": "13238123",
        "key": "HDFS-14568",
        "self": "https://x/13238123",
        "fields": fields,
    }


def _case(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "attributes": {"type": "Case", "url": "/services/data/v60.0/sobjects/Case/x"},
        "Id": "5007000000OFL5FAAX",
        "CaseNumber": "00001026",
        "Subject": "Seats exceeded",
        "Description": None,
        "Priority": "High",
        "Type": "Problem",
        "Status": "Working",
        "OwnerId": "00G5e000004XyZaEAK",
        "AccountId": None,
        "ContactId": None,
        "CreatedDate": "2024-01-15T10:22:33.000+0000",
        "LastModifiedDate": "2024-01-15T10:25:02.000+0000",
    }
    record.update(changes)
    return record


def test_servicenow_incident_fields(mapping_set: MappingSet) -> None:
    ticket = mapping_set.normalize("servicenow", _incident())
    assert ticket.external_id == "INC0010041"
    assert ticket.record_id == "9d385017c611228701d22104cc95c371"
    assert ticket.title == "Printer on floor 3 jams"
    assert ticket.priority == 3
    assert ticket.urgency == 2
    assert ticket.impact == 2
    assert ticket.issue_type == "hardware"
    assert ticket.state == "In Progress"


def test_servicenow_dates_are_utc(mapping_set: MappingSet) -> None:
    ticket = mapping_set.normalize("servicenow", _incident())
    assert ticket.created_at == datetime(2024, 1, 15, 10, 22, 33, tzinfo=UTC)


def test_servicenow_reference_link_value(mapping_set: MappingSet) -> None:
    reference = {
        "link": f"https://x.service-now.com/api/now/table/sys_user_group/{GROUP_SYS_ID}",
        "value": GROUP_SYS_ID,
    }
    ticket = mapping_set.normalize("servicenow", _incident(assignment_group=reference))
    assert ticket.assignment_group == GROUP_SYS_ID


def test_servicenow_reference_display_string(mapping_set: MappingSet) -> None:
    ticket = mapping_set.normalize("servicenow", _incident(assignment_group="Hardware"))
    assert ticket.assignment_group == "Hardware"


def test_servicenow_reference_prefers_display_value(mapping_set: MappingSet) -> None:
    reference = {
        "display_value": "Hardware",
        "value": GROUP_SYS_ID,
        "link": "https://x",
    }
    ticket = mapping_set.normalize("servicenow", _incident(assignment_group=reference))
    assert ticket.assignment_group == "Hardware"


def test_servicenow_empty_reference_is_none(mapping_set: MappingSet) -> None:
    ticket = mapping_set.normalize("servicenow", _incident(assignment_group=""))
    assert ticket.assignment_group is None


def test_servicenow_display_value_all(mapping_set: MappingSet) -> None:
    # With sysparm_display_value=all every field is a {display_value, value} pair.
    record = _incident(
        priority={"display_value": "3 - Moderate", "value": "3"},
        state={"display_value": "In Progress", "value": "2"},
    )
    ticket = mapping_set.normalize("servicenow", record)
    assert ticket.priority == 3
    assert ticket.state == "In Progress"


def test_servicenow_state_falls_back_to_incident_state(mapping_set: MappingSet) -> None:
    record = _incident(state="", incident_state="6")
    ticket = mapping_set.normalize("servicenow", record)
    assert ticket.state == "Resolved"


def test_servicenow_unknown_state_kept(mapping_set: MappingSet) -> None:
    ticket = mapping_set.normalize("servicenow", _incident(state="-5"))
    assert ticket.state == "-5"


def test_servicenow_unknown_priority_names_value(mapping_set: MappingSet) -> None:
    with pytest.raises(NormalizationError) as caught:
        mapping_set.normalize("servicenow", _incident(priority="9"))
    assert str(caught.value).startswith(
        "mappings/servicenow.yaml: priority value '9' at values.priority is unknown; "
        "expected one of 1, 2, 3, 4, 5."
    )
    assert caught.value.system == "servicenow"
    assert caught.value.field == "priority"
    assert caught.value.value == "9"


def test_servicenow_bad_date_names_transform(mapping_set: MappingSet) -> None:
    with pytest.raises(NormalizationError) as caught:
        mapping_set.normalize("servicenow", _incident(sys_created_on="15/01/2024"))
    assert "invalid for transform sn_datetime" in str(caught.value)
    assert caught.value.field == "created_at"


def test_record_kept_in_raw(mapping_set: MappingSet) -> None:
    record = _incident()
    ticket = mapping_set.normalize("servicenow", record)
    assert ticket.raw == record


def test_jira_v2_issue_fields(mapping_set: MappingSet) -> None:
    ticket = mapping_set.normalize("jira", _issue())
    assert ticket.external_id == "HDFS-14568"
    assert ticket.record_id == "13238123"
    assert ticket.description == "Both NameNodes switch roles within a minute."
    assert ticket.issue_type == "Bug"
    assert ticket.priority == 2
    assert ticket.state == "New"
    assert ticket.labels == ["ha"]


def test_jira_offset_date_parsed(mapping_set: MappingSet) -> None:
    ticket = mapping_set.normalize("jira", _issue())
    offset = timezone(timedelta(hours=3))
    assert ticket.created_at == datetime(2019, 6, 13, 12, 51, 49, 131000, tzinfo=offset)


def test_jira_v3_adf_description(mapping_set: MappingSet) -> None:
    adf = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "First line."}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "Second."}]},
        ],
    }
    ticket = mapping_set.normalize("jira", _issue(description=adf))
    assert ticket.description == "First line.\nSecond."


def test_jira_null_description_is_empty(mapping_set: MappingSet) -> None:
    ticket = mapping_set.normalize("jira", _issue(description=None))
    assert ticket.description == ""


@pytest.mark.parametrize(
    ("name", "priority"),
    [
        ("Highest", 1),
        ("High", 2),
        ("Medium", 3),
        ("Low", 4),
        ("Lowest", 5),
        ("Blocker", 1),
        ("Critical", 2),
        ("Major", 3),
        ("Minor", 4),
        ("Trivial", 5),
    ],
)
def test_jira_priority_names_map(
    mapping_set: MappingSet, name: str, priority: int
) -> None:
    ticket = mapping_set.normalize("jira", _issue(priority={"name": name}))
    assert ticket.priority == priority


def test_jira_unknown_priority_names_value(mapping_set: MappingSet) -> None:
    with pytest.raises(NormalizationError) as caught:
        mapping_set.normalize("jira", _issue(priority={"name": "Urgent"}))
    assert str(caught.value).startswith(
        "mappings/jira.yaml: priority value 'Urgent' at values.priority is unknown; "
        "expected one of Highest, High, Medium, Low, Lowest, Blocker"
    )


def test_jira_project_stays_out_of_features(mapping_set: MappingSet) -> None:
    ticket = mapping_set.normalize("jira", _issue())
    features = [
        ticket.title,
        ticket.description,
        ticket.category,
        ticket.subcategory,
        ticket.issue_type,
        str(ticket.priority),
    ]
    assert not any("HDFS" in str(feature) for feature in features)
    assert ticket.raw["fields"]["project"]["key"] == "HDFS"


def test_jira_missing_priority_is_none(mapping_set: MappingSet) -> None:
    ticket = mapping_set.normalize("jira", _issue(priority=None))
    assert ticket.priority is None


def test_salesforce_case_fields(mapping_set: MappingSet) -> None:
    ticket = mapping_set.normalize("salesforce", _case())
    assert ticket.external_id == "00001026"
    assert ticket.priority == 2
    assert ticket.issue_type == "Problem"
    assert ticket.state == "In Progress"
    assert ticket.assignment_group == "00G5e000004XyZaEAK"
    assert ticket.description == ""


def test_salesforce_15_char_id_becomes_18(mapping_set: MappingSet) -> None:
    ticket = mapping_set.normalize("salesforce", _case(Id="5007000000OFL5F"))
    assert ticket.record_id == "5007000000OFL5FAAX"


def test_salesforce_bad_id_names_field(mapping_set: MappingSet) -> None:
    with pytest.raises(NormalizationError) as caught:
        mapping_set.normalize("salesforce", _case(Id="500-bad"))
    assert caught.value.field == "record_id"
    assert "15 or 18 letters and digits" in str(caught.value)


def test_salesforce_critical_priority_maps(mapping_set: MappingSet) -> None:
    ticket = mapping_set.normalize("salesforce", _case(Priority="Critical"))
    assert ticket.priority == 1


def test_missing_external_id_raises(mapping_set: MappingSet) -> None:
    with pytest.raises(NormalizationError) as caught:
        mapping_set.normalize("salesforce", _case(CaseNumber=""))
    assert caught.value.field == "external_id"
    assert "expected a value at CaseNumber" in str(caught.value)


def test_text_field_rejects_mapping(mapping_set: MappingSet) -> None:
    with pytest.raises(NormalizationError) as caught:
        mapping_set.normalize("salesforce", _case(Subject={"text": "x"}))
    assert caught.value.field == "title"


def test_system_mismatch_raises(mapping_set: MappingSet) -> None:
    with pytest.raises(ValueError, match="with the 'jira' mapping"):
        normalize_record("servicenow", _incident(), mapping=mapping_set.system("jira"))


def test_unknown_system_lookup_raises(mapping_set: MappingSet) -> None:
    with pytest.raises(LookupError, match="no mapping for system 'zendesk'"):
        mapping_set.normalize("zendesk", {})


def _small_mapping(**value_map: Any) -> SystemMapping:
    return SystemMapping.model_validate(
        {
            "system": "tracker",
            "fields": {
                "external_id": "id",
                "priority": "prio",
                "category": "items.1.name",
            },
            "values": {"priority": {"map": {"p1": 1, "p2": 2}, **value_map}},
        }
    )


def test_value_map_default_used() -> None:
    mapping = _small_mapping(default=3)
    ticket = normalize_record("tracker", {"id": "7", "prio": "p9"}, mapping=mapping)
    assert ticket.priority == 3


def test_value_map_ignores_case() -> None:
    mapping = _small_mapping(ignore_case=True)
    ticket = normalize_record("tracker", {"id": "7", "prio": "P2"}, mapping=mapping)
    assert ticket.priority == 2


def test_number_segment_indexes_list() -> None:
    record = {"id": "7", "items": [{"name": "first"}, {"name": "second"}]}
    ticket = normalize_record("tracker", record, mapping=_small_mapping())
    assert ticket.category == "second"


def test_normalize_is_fast(mapping_set: MappingSet) -> None:
    # A generous bound that still catches per-record YAML or regex work.
    records = [_issue(summary=f"Issue {index}") for index in range(2000)]
    started = time.perf_counter()
    for record in records:
        mapping_set.normalize("jira", record)
    assert time.perf_counter() - started < 2.0
