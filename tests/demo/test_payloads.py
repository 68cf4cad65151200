"""Demo rows shaped as ServiceNow, Jira and Salesforce records, and back again."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from router.demo.payloads import (
    SALESFORCE_PRIORITIES,
    DemoRow,
    helpdesk_external_id,
    jira_issue_type,
    to_jira_issue,
    to_salesforce_case,
    to_servicenow_record,
    to_system_record,
)
from router.mapping import MappingSet, load_mappings
from router.mapping.transforms import salesforce_id_suffix

SYSTEMS = ["servicenow", "jira", "salesforce"]
APACHE_ROW = DemoRow(
    external_id="HDFS-123",
    title="Balancer ignores dfs.balancer.max-size-to-move",
    issue_type="BUG FIXES",
    priority_name="Blocker",
    created_at=datetime(2019, 6, 13, 9, 51, 49, 131000, tzinfo=UTC),
)
HELPDESK_ROW = DemoRow(
    external_id=helpdesk_external_id(42),
    title="new laptop request",
    description="hi please order new laptop for new starter thanks",
    sequence=42,
)
# The canonical priority each system gives an Apache priority name.
EXPECTED_PRIORITY = {
    "servicenow": {"Blocker": 1, "Critical": 2, "Major": 3, "Minor": 4, "Trivial": 5},
    "jira": {"Blocker": 1, "Critical": 2, "Major": 3, "Minor": 4, "Trivial": 5},
    "salesforce": {"Blocker": 1, "Critical": 2, "Major": 3, "Minor": 4, "Trivial": 4},
}


@pytest.fixture(scope="module")
def mapping_set() -> MappingSet:
    return load_mappings()


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("row", [APACHE_ROW, HELPDESK_ROW], ids=["apache", "helpdesk"])
def test_round_trip_keeps_classifier_inputs(
    mapping_set: MappingSet, system: str, row: DemoRow
) -> None:
    ticket = mapping_set.normalize(system, to_system_record(system, row))
    assert ticket.source_system == system
    assert ticket.title == row.title
    assert ticket.description == row.description
    assert ticket.issue_type == jira_issue_type(row.issue_type)
    assert ticket.priority == EXPECTED_PRIORITY[system][row.priority_name or "Major"]


@pytest.mark.parametrize("system", SYSTEMS)
def test_round_trip_keeps_created_at(mapping_set: MappingSet, system: str) -> None:
    ticket = mapping_set.normalize(system, to_system_record(system, APACHE_ROW))
    expected = APACHE_ROW.created_at
    if system == "servicenow" and expected is not None:
        # ServiceNow dates have whole seconds.
        expected = expected.replace(microsecond=0)
    assert ticket.created_at == expected


@pytest.mark.parametrize("system", SYSTEMS)
def test_round_trip_leaves_ticket_unassigned(
    mapping_set: MappingSet, system: str
) -> None:
    ticket = mapping_set.normalize(system, to_system_record(system, APACHE_ROW))
    assert ticket.assignment_group is None


@pytest.mark.parametrize("system", SYSTEMS)
def test_project_never_reaches_features(mapping_set: MappingSet, system: str) -> None:
    ticket = mapping_set.normalize(system, to_system_record(system, APACHE_ROW))
    features = [ticket.category, ticket.subcategory, ticket.issue_type]
    assert "HDFS" not in features
    assert not ticket.title.startswith("HDFS")


def test_servicenow_values_are_strings() -> None:
    record = to_servicenow_record(APACHE_ROW)
    assert all(isinstance(value, str) for value in record.values())


def test_servicenow_ids_are_deterministic() -> None:
    first = to_servicenow_record(APACHE_ROW)
    second = to_servicenow_record(APACHE_ROW)
    assert first["sys_id"] == second["sys_id"]
    assert first["number"] == second["number"]


def test_servicenow_ids_have_vendor_format() -> None:
    record = to_servicenow_record(APACHE_ROW)
    assert re.fullmatch(r"[0-9a-f]{32}", record["sys_id"])
    assert re.fullmatch(r"INC\d{7}", record["number"])


def test_servicenow_sequence_sets_number() -> None:
    assert to_servicenow_record(HELPDESK_ROW)["number"] == "INC0000042"


def test_servicenow_record_is_new_and_unassigned() -> None:
    record = to_servicenow_record(APACHE_ROW)
    assert record["state"] == "1"
    assert record["assignment_group"] == ""
    assert record["sys_mod_count"] == "0"
    assert record["sys_created_on"] == "2019-06-13 09:51:49"


def test_servicenow_impact_urgency_match_priority() -> None:
    record = to_servicenow_record(APACHE_ROW)
    assert (record["priority"], record["impact"], record["urgency"]) == ("1", "1", "1")


def test_jira_issue_keeps_apache_key() -> None:
    issue = to_jira_issue(APACHE_ROW)
    assert issue["key"] == "HDFS-123"
    assert issue["fields"]["project"]["key"] == "HDFS"
    assert issue["self"].endswith(f"/rest/api/2/issue/{issue['id']}")


def test_jira_issue_uses_jira_names() -> None:
    fields = to_jira_issue(APACHE_ROW)["fields"]
    assert fields["issuetype"]["name"] == "Bug"
    assert fields["priority"]["name"] == "Blocker"
    assert fields["status"]["name"] == "Open"
    assert fields["created"] == "2019-06-13T09:51:49.131+0000"


def test_jira_helpdesk_row_gets_help_project() -> None:
    issue = to_jira_issue(HELPDESK_ROW)
    assert issue["key"] == "HELP-42"
    assert issue["fields"]["project"]["key"] == "HELP"


def test_jira_empty_description_is_null() -> None:
    assert to_jira_issue(APACHE_ROW)["fields"]["description"] is None


def test_salesforce_case_id_is_valid_18() -> None:
    case_id = to_salesforce_case(APACHE_ROW)["Id"]
    assert len(case_id) == 18
    assert case_id.startswith("500")
    assert case_id[15:] == salesforce_id_suffix(case_id[:15])


def test_salesforce_case_has_vendor_shape() -> None:
    case = to_salesforce_case(HELPDESK_ROW)
    assert case["attributes"]["type"] == "Case"
    assert case["CaseNumber"] == "00000042"
    assert case["Status"] == "New"
    assert case["Origin"] == "Web"
    assert case["CreatedDate"] == "2024-01-15T10:22:33.000+0000"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Blocker", "Critical"),
        ("Critical", "High"),
        ("Major", "Medium"),
        ("Minor", "Low"),
        ("Trivial", "Low"),
    ],
)
def test_salesforce_priority_names(name: str, expected: str) -> None:
    row = DemoRow(external_id="KAFKA-1", title="x", priority_name=name)
    assert to_salesforce_case(row)["Priority"] == expected
    assert SALESFORCE_PRIORITIES[name] == expected


@pytest.mark.parametrize(
    ("section", "name"),
    [
        ("BUG FIXES", "Bug"),
        ("IMPROVEMENTS", "Improvement"),
        ("SUB-TASKS", "Sub-task"),
        ("OTHER", "Task"),
        ("NEW FEATURES", "New Feature"),
        ("TESTS", "Test"),
        ("INCOMPATIBLE CHANGES", "Incompatible Change"),
        ("IMPORTANT ISSUES", "Important"),
        (None, "Task"),
        ("Epic", "Epic"),
    ],
)
def test_jira_issue_type_names(section: str | None, name: str) -> None:
    assert jira_issue_type(section) == name


def test_unknown_priority_raises() -> None:
    row = DemoRow(external_id="KAFKA-1", title="x", priority_name="Urgent")
    with pytest.raises(ValueError, match="priority 'Urgent' of row 'KAFKA-1'"):
        to_servicenow_record(row)


def test_unknown_system_raises() -> None:
    with pytest.raises(ValueError, match="unknown system 'zendesk'"):
        to_system_record("zendesk", APACHE_ROW)


def test_different_rows_get_different_ids() -> None:
    other = DemoRow(external_id="HDFS-124", title="x")
    assert (
        to_servicenow_record(other)["sys_id"]
        != to_servicenow_record(APACHE_ROW)["sys_id"]
    )
    assert to_salesforce_case(other)["Id"] != to_salesforce_case(APACHE_ROW)["Id"]
