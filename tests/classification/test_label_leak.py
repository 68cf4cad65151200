"""The label-leak guard: nothing that names the resolver group reaches the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from router.classification.features import (
    MODEL_INPUT_FIELDS,
    ModelInput,
    input_from_example,
    input_from_ticket,
)
from router.classification.model import RoutingModel
from router.datasets.catalog import (
    APACHE_LEAKING_COLUMNS,
    DATASETS,
    Example,
    LabelLeakError,
    check_no_label_leak,
    load_csv_examples,
)
from router.demo.payloads import DemoRow, to_jira_issue, to_system_record
from router.mapping import MappingSet, load_mappings
from router.mapping.schemas import CLASSIFIER_FIELDS
from router.schemas import Ticket

SYSTEMS = ("servicenow", "jira", "salesforce")
# Ticket fields that identify a ticket or its team, and that the model must ignore.
IDENTITY_FIELDS = (
    "external_id",
    "record_id",
    "account",
    "assignment_group",
    "labels",
    "context",
    "raw",
)
CSV_HEADER = "short_description,details,assignment_group\n"
CSV_ROWS = (
    "printer jammed,paper stuck in tray two,Hardware\n"
    "password expired,cannot sign in since monday,Access\n"
    "mailbox full,,Storage\n"
    "no group here,the label cell is empty,\n"
)


@pytest.fixture(scope="module")
def mapping_set() -> MappingSet:
    return load_mappings()


@pytest.fixture
def tickets_csv(tmp_path: Path) -> Path:
    path = tmp_path / "tickets.csv"
    path.write_text(CSV_HEADER + CSV_ROWS, encoding="utf-8")
    return path


def hdfs_and_yarn_tickets() -> tuple[Ticket, Ticket]:
    """Return two tickets with equal inputs whose ids and context name other teams."""
    inputs: dict[str, Any] = {
        "source_system": "jira",
        "title": "printer on floor two is broken",
        "description": "it prints blank pages",
        "issue_type": "Incident",
        "priority": 3,
    }
    hdfs = Ticket(
        **inputs,
        external_id="HDFS-1",
        record_id="10001",
        account="Acme",
        assignment_group="HDFS",
        labels=["hdfs", "namenode"],
        context={"project": "HDFS", "account_tier": "gold"},
        raw={"key": "HDFS-1", "fields": {"project": {"key": "HDFS"}}},
    )
    yarn = Ticket(
        **inputs,
        external_id="YARN-1",
        record_id="20002",
        account="Globex",
        assignment_group="YARN",
        labels=["yarn"],
        context={"project": "YARN"},
        raw={"key": "YARN-1", "fields": {"project": {"key": "YARN"}}},
    )
    return hdfs, yarn


def test_label_column_cannot_be_input() -> None:
    with pytest.raises(LabelLeakError) as caught:
        check_no_label_leak(["summary", "project"], label_column="project")
    assert "'project'" in str(caught.value)


@pytest.mark.parametrize("column", APACHE_LEAKING_COLUMNS)
def test_apache_leaking_column_is_rejected(column: str) -> None:
    with pytest.raises(LabelLeakError) as caught:
        check_no_label_leak(
            ["summary", column],
            label_column="project",
            leaking=APACHE_LEAKING_COLUMNS,
        )
    message = str(caught.value)
    assert repr(column) in message
    assert "'summary'" not in message


def test_leak_error_names_every_column() -> None:
    with pytest.raises(LabelLeakError) as caught:
        check_no_label_leak(
            ["key", "summary", "components"],
            label_column="project",
            leaking=APACHE_LEAKING_COLUMNS,
        )
    assert "'key', 'components'" in str(caught.value)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_bundled_inputs_pass_leak_check(name: str) -> None:
    info = DATASETS[name]
    check_no_label_leak(
        info.input_columns, label_column=info.label_column, leaking=info.leaking_columns
    )
    assert info.label_column not in info.input_columns


def test_csv_label_in_text_is_rejected(tickets_csv: Path) -> None:
    with pytest.raises(LabelLeakError) as caught:
        load_csv_examples(
            tickets_csv,
            text_columns=["short_description", "assignment_group"],
            label_column="assignment_group",
        )
    assert "'assignment_group'" in str(caught.value)


def test_csv_missing_column_lists_header(tickets_csv: Path) -> None:
    with pytest.raises(ValueError) as caught:
        load_csv_examples(
            tickets_csv, text_columns=["summary"], label_column="assignment_group"
        )
    message = str(caught.value)
    assert "column(s) 'summary' not found" in message
    assert "'short_description', 'details', 'assignment_group'" in message


def test_csv_rows_without_label_dropped(tickets_csv: Path) -> None:
    examples = load_csv_examples(
        tickets_csv,
        text_columns=["short_description", "details"],
        label_column="assignment_group",
    )
    assert [e.label for e in examples] == ["Hardware", "Access", "Storage"]
    assert examples[0].title == "printer jammed paper stuck in tray two"
    assert examples[2].title == "mailbox full"


@pytest.mark.parametrize("field", IDENTITY_FIELDS)
def test_model_inputs_exclude_identity_field(field: str) -> None:
    assert field not in MODEL_INPUT_FIELDS


def test_model_inputs_match_mapping_guard() -> None:
    assert set(MODEL_INPUT_FIELDS) == CLASSIFIER_FIELDS


def test_ticket_input_drops_identity_fields() -> None:
    hdfs, yarn = hdfs_and_yarn_tickets()
    assert input_from_ticket(hdfs) == input_from_ticket(yarn)


def test_example_input_drops_external_id() -> None:
    first = Example(external_id="HDFS-1", title="Balancer hangs", label="HDFS")
    second = Example(external_id="YARN-1", title="Balancer hangs", label="YARN")
    assert input_from_example(first) == input_from_example(second)


def test_identity_fields_leave_features_unchanged(tiny_model: RoutingModel) -> None:
    hdfs, yarn = hdfs_and_yarn_tickets()
    rows = tiny_model.vectorize([input_from_ticket(hdfs), input_from_ticket(yarn)])
    assert rows[0].nnz > 0
    assert (rows[0] != rows[1]).nnz == 0


def test_identity_fields_leave_prediction_unchanged(
    tiny_model: RoutingModel,
) -> None:
    hdfs, yarn = hdfs_and_yarn_tickets()
    predictions, _ = tiny_model.predict(
        [input_from_ticket(hdfs), input_from_ticket(yarn)]
    )
    first, second = predictions
    assert first.group == second.group
    assert first.confidence == second.confidence
    assert first.candidates == second.candidates


def test_title_change_changes_features(tiny_model: RoutingModel) -> None:
    hdfs, _ = hdfs_and_yarn_tickets()
    renamed = hdfs.model_copy(update={"title": "password expired on my laptop"})
    rows = tiny_model.vectorize([input_from_ticket(hdfs), input_from_ticket(renamed)])
    assert (rows[0] != rows[1]).nnz > 0


def test_title_change_changes_prediction(tiny_model: RoutingModel) -> None:
    printer = ModelInput(title="printer on floor two is broken")
    password = ModelInput(title="my password expired yesterday")
    predictions, _ = tiny_model.predict([printer, password])
    assert predictions[0].group != predictions[1].group


@pytest.mark.parametrize(
    ("key", "project"), [("HDFS-1234", "HDFS"), ("YARN-77", "YARN")]
)
def test_jira_mapping_keeps_project_out(
    mapping_set: MappingSet, key: str, project: str
) -> None:
    row = DemoRow(
        external_id=key,
        title="Balancer ignores the bandwidth limit",
        description="Moving blocks saturates the network.",
        issue_type="BUG FIXES",
        priority_name="Major",
    )
    issue = to_jira_issue(row)
    issue["fields"]["components"] = [{"name": "NameNode"}]
    ticket = mapping_set.normalize("jira", issue)
    assert ticket.external_id == key
    assert ticket.raw["fields"]["project"]["key"] == project
    for field in sorted(CLASSIFIER_FIELDS):
        value = str(getattr(ticket, field))
        assert project not in value, field
        assert "NameNode" not in value, field


def test_jira_summary_with_project_is_kept(mapping_set: MappingSet) -> None:
    row = DemoRow(external_id="HDFS-9", title="HDFS balancer crashes on start")
    ticket = mapping_set.normalize("jira", to_jira_issue(row))
    assert ticket.title == "HDFS balancer crashes on start"


@pytest.mark.parametrize("system", SYSTEMS)
def test_classifier_paths_avoid_label_paths(
    mapping_set: MappingSet, system: str
) -> None:
    mapping = mapping_set.system(system)
    assert mapping.label_paths
    for field in sorted(CLASSIFIER_FIELDS & set(mapping.fields)):
        for path in mapping.fields[field].path:
            for label_path in mapping.label_paths:
                assert path != label_path, field
                assert not path.startswith(f"{label_path}."), field


def test_jira_label_paths_cover_key_and_project(mapping_set: MappingSet) -> None:
    label_paths = mapping_set.system("jira").label_paths
    assert "key" in label_paths
    assert "fields.project" in label_paths
    assert "fields.components" in label_paths


@pytest.mark.parametrize("system", SYSTEMS)
def test_label_paths_leave_model_input_unchanged(
    mapping_set: MappingSet, system: str
) -> None:
    row = DemoRow(external_id="HDFS-42", title="Balancer hangs", sequence=42)
    first = to_system_record(system, row)
    second = to_system_record(system, row)
    # Each system's record names the team in its own place.
    if system == "servicenow":
        first["assignment_group"] = {"display_value": "HDFS Storage", "value": "a1"}
        second["assignment_group"] = {"display_value": "YARN Scheduling", "value": "b2"}
    elif system == "jira":
        second["key"] = "YARN-42"
        second["fields"]["project"] = {"key": "YARN", "name": "YARN"}
        second["fields"]["components"] = [{"name": "ResourceManager"}]
    else:
        first["OwnerId"] = "00G000000000001AAA"
        second["OwnerId"] = "00G000000000002AAA"
    tickets = [mapping_set.normalize(system, record) for record in (first, second)]
    assert tickets[0].raw != tickets[1].raw
    assert input_from_ticket(tickets[0]) == input_from_ticket(tickets[1])
