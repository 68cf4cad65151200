"""Loading and validating mapping folders: each kind of problem, the shipped tree."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from router.mapping import (
    NO_VALUE,
    MappingError,
    MappingProblem,
    MappingSet,
    load_mappings,
    validate_mappings,
)

# The `edit_yaml` fixture: load a YAML file of the copy, change it, save it.
EditYaml = Callable[[str, Callable[[dict], None]], None]

APACHE_PROJECTS = [
    "SPARK", "HBASE", "FLINK", "HADOOP", "HIVE", "HDFS", "YARN", "IMPALA", "KAFKA",
    "MAPREDUCE", "TEZ", "SENTRY", "ZOOKEEPER", "BIGTOP", "KNOX", "RANGER", "OOZIE",
    "PIG", "KUDU", "YETUS", "PARQUET", "ORC", "MAHOUT",
]  # fmt: skip
HELPDESK_GROUPS = [
    "Access", "Administrative rights", "Hardware", "HR Support", "Internal Project",
    "Miscellaneous", "Purchase", "Storage",
]  # fmt: skip


def _only(problems: list[MappingProblem], file: str) -> MappingProblem:
    matching = [problem for problem in problems if problem.file == file]
    assert len(matching) == 1, matching
    return matching[0]


def test_shipped_tree_validates_clean(shipped_dir: Path) -> None:
    assert validate_mappings(shipped_dir) == []


def test_shipped_tree_loads_every_kind(mapping_set: MappingSet) -> None:
    assert sorted(mapping_set.systems) == ["jira", "salesforce", "servicenow"]
    assert sorted(mapping_set.examples) == [
        "billing-dispute",
        "jira_issue",
        "production-degradation",
        "provisioning-failure",
        "salesforce_case",
        "seat-overage-access",
        "servicenow_incident",
    ]
    assert mapping_set.thresholds.default == 0.9
    assert mapping_set.thresholds.review_candidates == 3


def test_shipped_examples_have_context(mapping_set: MappingSet) -> None:
    for ticket in mapping_set.examples.values():
        assert ticket.context, ticket.external_id


def test_shipped_examples_cover_each_system(mapping_set: MappingSet) -> None:
    systems = {ticket.source_system for ticket in mapping_set.examples.values()}
    assert systems == {"servicenow", "jira", "salesforce"}


@pytest.mark.parametrize("group", APACHE_PROJECTS + HELPDESK_GROUPS)
def test_taxonomy_lists_bundled_group(mapping_set: MappingSet, group: str) -> None:
    assert group in mapping_set.taxonomy.group_names


def test_taxonomy_has_general_fallback(mapping_set: MappingSet) -> None:
    assert mapping_set.taxonomy.fallback_intent == "general"


def test_yaml_syntax_error_reports_line(mapping_copy: Path) -> None:
    (mapping_copy / "thresholds.yaml").write_text(
        "default: 0.85\ngroups: {HDFS: 0.9\nreview_candidates: 3\n", encoding="utf-8"
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/thresholds.yaml")
    assert "invalid YAML at line" in problem.message
    assert problem.key_path == ""


def test_duplicate_yaml_key_reports_lines(mapping_copy: Path) -> None:
    text = "default: 0.85\nreview_candidates: 3\ndefault: 0.9\n"
    (mapping_copy / "thresholds.yaml").write_text(text, encoding="utf-8")
    problem = _only(validate_mappings(mapping_copy), "mappings/thresholds.yaml")
    assert "duplicate key 'default' (first given at line 1)" in problem.message
    assert "line 3" in problem.message


def test_unknown_top_level_key_reported(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    edit_yaml("jira.yaml", lambda data: data.update(colour="blue"))
    problem = _only(validate_mappings(mapping_copy), "mappings/jira.yaml")
    assert problem.key_path == "colour"
    assert problem.value == "blue"
    assert "expected one of system, version, fields" in problem.message


def test_unknown_canonical_field_reported(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    edit_yaml("jira.yaml", lambda data: data["fields"].update(summery="fields.summary"))
    problem = _only(validate_mappings(mapping_copy), "mappings/jira.yaml")
    assert problem.key_path == "fields.summery"
    assert problem.value == "summery"
    assert "issue_type" in problem.message


def test_unknown_threshold_group_reported(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    edit_yaml("thresholds.yaml", lambda data: data.update(groups={"HDSF": 0.9}))
    problem = _only(validate_mappings(mapping_copy), "mappings/thresholds.yaml")
    assert problem.key_path == "groups.HDSF"
    assert problem.value == "HDSF"
    assert "did you mean 'HDFS'?" in problem.message


def test_threshold_above_one_reported(edit_yaml: EditYaml, mapping_copy: Path) -> None:
    edit_yaml("thresholds.yaml", lambda data: data.update(default=1.5))
    problem = _only(validate_mappings(mapping_copy), "mappings/thresholds.yaml")
    assert problem.key_path == "default"
    assert problem.value == 1.5


def test_bad_regex_reported_with_index(edit_yaml: EditYaml, mapping_copy: Path) -> None:
    edit_yaml(
        "taxonomy.yaml", lambda data: data["intents"][3].update(patterns=["(unclosed"])
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/taxonomy.yaml")
    assert problem.key_path == "intents[3].patterns[0]"
    assert problem.value == "(unclosed"
    assert "invalid regular expression" in problem.message


def test_duplicate_intent_id_reported(edit_yaml: EditYaml, mapping_copy: Path) -> None:
    edit_yaml("taxonomy.yaml", lambda data: data["intents"][2].update(id="bug_report"))
    problems = validate_mappings(mapping_copy)
    problem = _only(problems, "mappings/taxonomy.yaml")
    assert problem.value == "bug_report"
    assert "duplicate intent id" in problem.message


def test_duplicate_intent_points_at_second(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    edit_yaml(
        "taxonomy.yaml", lambda data: data["intents"][1].update(id="password_reset")
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/taxonomy.yaml")
    assert problem.key_path == "intents[1].id"
    assert "first given at intents[0].id" in problem.message


def test_duplicate_group_name_reported(edit_yaml: EditYaml, mapping_copy: Path) -> None:
    def duplicate(data: dict) -> None:
        data["resolver_groups"].append(dict(data["resolver_groups"][0], name="spark"))

    edit_yaml("taxonomy.yaml", duplicate)
    problem = _only(validate_mappings(mapping_copy), "mappings/taxonomy.yaml")
    assert problem.key_path == "resolver_groups[35].name"
    assert "duplicate group" in problem.message


def test_intent_without_keywords_reported(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    edit_yaml(
        "taxonomy.yaml",
        lambda data: data["intents"][0].update(keywords=[], patterns=[]),
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/taxonomy.yaml")
    assert problem.key_path == "intents[0]"
    assert "can never match" in problem.message


def test_missing_fallback_intent_reported(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    edit_yaml("taxonomy.yaml", lambda data: data.update(fallback_intent="other"))
    problems = {
        problem.key_path: problem for problem in validate_mappings(mapping_copy)
    }
    assert problems["fallback_intent"].value == "other"
    # `general` is no longer the fallback, and it has no keywords of its own.
    assert "can never match" in problems["intents[18]"].message


def test_value_map_target_out_of_range(edit_yaml: EditYaml, mapping_copy: Path) -> None:
    edit_yaml(
        "jira.yaml", lambda data: data["values"]["priority"]["map"].update(Highest=9)
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/jira.yaml")
    assert problem.key_path == "values.priority.map.Highest"
    assert problem.value == 9
    assert "from 1 to 5" in problem.message


def test_quoted_priority_target_reported(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    edit_yaml(
        "servicenow.yaml",
        lambda data: data["values"]["priority"]["map"].update({"1": "1"}),
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/servicenow.yaml")
    assert problem.key_path == "values.priority.map.1"
    assert "without quotes" in problem.message


def test_number_field_needs_value_map(edit_yaml: EditYaml, mapping_copy: Path) -> None:
    edit_yaml("salesforce.yaml", lambda data: data["values"].pop("priority"))
    problem = _only(validate_mappings(mapping_copy), "mappings/salesforce.yaml")
    assert problem.key_path == "fields.priority"
    assert "transform: int" in problem.message


def test_value_map_without_field_reported(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    edit_yaml(
        "jira.yaml", lambda data: data["values"].update(urgency={"map": {"x": 1}})
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/jira.yaml")
    assert problem.key_path == "values.urgency"
    assert "no fields.urgency entry" in problem.message


def test_transform_on_wrong_field_reported(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    edit_yaml(
        "servicenow.yaml",
        lambda data: data["fields"].update(
            title={"path": "short_description", "transform": "sn_datetime"}
        ),
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/servicenow.yaml")
    assert problem.key_path == "fields.title.transform"
    assert problem.value == "sn_datetime"


def test_unknown_transform_reported(edit_yaml: EditYaml, mapping_copy: Path) -> None:
    edit_yaml(
        "jira.yaml",
        lambda data: data["fields"]["description"].update(transform="markdown"),
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/jira.yaml")
    assert problem.key_path == "fields.description.transform"
    assert "'adf_text'" in problem.message


def test_invalid_source_path_reported(edit_yaml: EditYaml, mapping_copy: Path) -> None:
    edit_yaml("jira.yaml", lambda data: data["fields"].update(title="fields..summary"))
    problem = _only(validate_mappings(mapping_copy), "mappings/jira.yaml")
    assert problem.key_path == "fields.title.path[0]"
    assert "dot-separated keys" in problem.message


def test_label_path_into_classifier_reported(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    edit_yaml(
        "jira.yaml", lambda data: data["fields"].update(category="fields.project.key")
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/jira.yaml")
    assert problem.key_path == "fields.category.path[0]"
    assert "routing label" in problem.message


def test_system_must_match_file_name(edit_yaml: EditYaml, mapping_copy: Path) -> None:
    edit_yaml("jira.yaml", lambda data: data.update(system="jira_cloud"))
    problem = _only(validate_mappings(mapping_copy), "mappings/jira.yaml")
    assert problem.key_path == "system"
    assert problem.value == "jira_cloud"


def test_missing_external_id_reported(edit_yaml: EditYaml, mapping_copy: Path) -> None:
    edit_yaml("jira.yaml", lambda data: data["fields"].pop("external_id"))
    problem = _only(validate_mappings(mapping_copy), "mappings/jira.yaml")
    assert problem.key_path == "fields"
    assert "external_id" in problem.message


def test_invalid_write_back_key_reported(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    edit_yaml("jira.yaml", lambda data: data["write_back"].update(group_column="x"))
    problem = _only(validate_mappings(mapping_copy), "mappings/jira.yaml")
    assert problem.key_path == "write_back.group_column"
    assert "expected one of enabled, group_field, note_field" in problem.message


def test_bad_example_ticket_reported(mapping_copy: Path) -> None:
    path = mapping_copy / "examples" / "jira_issue.json"
    ticket = json.loads(path.read_text(encoding="utf-8"))
    ticket.update(priority=9, colour="blue")
    path.write_text(json.dumps(ticket), encoding="utf-8")

    problems = validate_mappings(mapping_copy)
    by_path = {problem.key_path: problem for problem in problems}
    assert sorted(by_path) == ["colour", "priority"]
    assert by_path["priority"].value == 9
    assert by_path["priority"].file == "mappings/examples/jira_issue.json"


def test_example_json_syntax_error_reported(mapping_copy: Path) -> None:
    (mapping_copy / "examples" / "broken.json").write_text(
        '{"a": 1,}', encoding="utf-8"
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/examples/broken.json")
    assert "invalid JSON at line 1, column 9" in problem.message


def test_example_from_unknown_system_reported(mapping_copy: Path) -> None:
    ticket = {"source_system": "zendesk", "external_id": "4711", "title": "Printer"}
    (mapping_copy / "examples" / "zendesk.json").write_text(
        json.dumps(ticket), encoding="utf-8"
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/examples/zendesk.json")
    assert problem.key_path == "source_system"
    assert problem.value == "zendesk"


def test_problems_in_several_files_all_reported(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    edit_yaml("jira.yaml", lambda data: data.update(colour="blue"))
    edit_yaml("servicenow.yaml", lambda data: data["fields"].update(summery="x"))
    edit_yaml("thresholds.yaml", lambda data: data.update(groups={"Nope": 0.5}))
    edit_yaml("taxonomy.yaml", lambda data: data["intents"][0].update(patterns=["["]))
    (mapping_copy / "notes.txt").write_text("todo", encoding="utf-8")

    files = sorted(problem.file for problem in validate_mappings(mapping_copy))
    assert files == [
        "mappings/jira.yaml",
        "mappings/notes.txt",
        "mappings/servicenow.yaml",
        "mappings/taxonomy.yaml",
        "mappings/thresholds.yaml",
    ]


def test_problems_in_one_file_all_reported(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    def break_twice(data: dict) -> None:
        data["values"]["priority"]["map"].update(Highest=0, Lowest=6)
        data["fields"].update(summery="x")

    edit_yaml("jira.yaml", break_twice)
    paths = sorted(problem.key_path for problem in validate_mappings(mapping_copy))
    assert paths == [
        "fields.summery",
        "values.priority.map.Highest",
        "values.priority.map.Lowest",
    ]


def test_unknown_key_keeps_other_checks(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    def break_twice(data: dict) -> None:
        data.update(colour="blue")
        data["values"]["priority"]["map"].update(Highest=0)

    edit_yaml("jira.yaml", break_twice)
    paths = sorted(problem.key_path for problem in validate_mappings(mapping_copy))
    assert paths == ["colour", "values.priority.map.Highest"]


def test_invalid_system_file_spares_examples(
    edit_yaml: EditYaml, mapping_copy: Path
) -> None:
    edit_yaml("jira.yaml", lambda data: data.update(fields="key"))
    problems = validate_mappings(mapping_copy)
    assert [problem.file for problem in problems] == ["mappings/jira.yaml"]


def test_unknown_file_reported(mapping_copy: Path) -> None:
    (mapping_copy / "notes.txt").write_text("todo", encoding="utf-8")
    problem = _only(validate_mappings(mapping_copy), "mappings/notes.txt")
    assert problem.message.startswith("unknown file")
    assert problem.value is NO_VALUE


def test_yml_suffix_reported(mapping_copy: Path) -> None:
    (mapping_copy / "taxonomy.yaml").rename(mapping_copy / "taxonomy.yml")
    problems = validate_mappings(mapping_copy)
    messages = {problem.file: problem.message for problem in problems}
    assert "rename it to end in .yaml" in messages["mappings/taxonomy.yml"]
    assert messages["mappings/taxonomy.yaml"].startswith("missing")


def test_yaml_without_system_key_reported(mapping_copy: Path) -> None:
    (mapping_copy / "zendesk.yaml").write_text("fields: {}\n", encoding="utf-8")
    problem = _only(validate_mappings(mapping_copy), "mappings/zendesk.yaml")
    assert "needs a 'system' key" in problem.message


def test_fourth_system_file_loads(mapping_copy: Path) -> None:
    (mapping_copy / "zendesk.yaml").write_text(
        "system: zendesk\nfields:\n  external_id: id\n  title: subject\n",
        encoding="utf-8",
    )
    loaded = load_mappings(mapping_copy)
    assert sorted(loaded.systems) == ["jira", "salesforce", "servicenow", "zendesk"]


def test_unknown_folder_reported(mapping_copy: Path) -> None:
    (mapping_copy / "rules").mkdir()
    problem = _only(validate_mappings(mapping_copy), "mappings/rules")
    assert problem.message.startswith("unknown folder")


def test_file_that_is_a_list_reported(mapping_copy: Path) -> None:
    (mapping_copy / "thresholds.yaml").write_text("- 0.85\n", encoding="utf-8")
    problem = _only(validate_mappings(mapping_copy), "mappings/thresholds.yaml")
    assert "expected a mapping of keys" in problem.message


def test_policy_and_escalation_files_load(mapping_copy: Path) -> None:
    (mapping_copy / "policies").mkdir(exist_ok=True)
    (mapping_copy / "policies" / "default.yaml").write_text(
        'version: "2024-01"\n'
        "rules:\n  - id: security-review\n"
        "    when: {all: [{field: intent, equals: security}]}\n"
        "    then: {review: true}\n",
        encoding="utf-8",
    )
    (mapping_copy / "escalation").mkdir(exist_ok=True)
    (mapping_copy / "escalation" / "p1.yaml").write_text(
        'version: "1"\nlevels:\n  - targets: ["group:Platform Operations"]\n'
        "    ack_timeout_minutes: 15\n",
        encoding="utf-8",
    )
    loaded = load_mappings(mapping_copy)
    assert loaded.policies["default"].version == "2024-01"
    assert loaded.escalations["p1"].levels[0].targets == ["group:Platform Operations"]


def test_policy_without_version_reported(mapping_copy: Path) -> None:
    (mapping_copy / "policies").mkdir(exist_ok=True)
    (mapping_copy / "policies" / "default.yaml").write_text(
        "rules: []\n", encoding="utf-8"
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/policies/default.yaml")
    assert problem.key_path == "version"
    assert "missing required key 'version'" in problem.message


def test_unquoted_policy_version_reported(mapping_copy: Path) -> None:
    (mapping_copy / "escalation").mkdir(exist_ok=True)
    (mapping_copy / "escalation" / "p1.yaml").write_text(
        "version: 1\nlevels:\n  - targets: [channel:#ops]\n"
        "    ack_timeout_minutes: 5\n",
        encoding="utf-8",
    )
    problem = _only(validate_mappings(mapping_copy), "mappings/escalation/p1.yaml")
    assert problem.value == 1
    assert "put quotes around the value" in problem.message


def test_missing_folder_reported(tmp_path: Path) -> None:
    problems = validate_mappings(tmp_path / "absent")
    assert len(problems) == 1
    assert "folder not found" in problems[0].message


def test_missing_taxonomy_reported(mapping_copy: Path) -> None:
    (mapping_copy / "taxonomy.yaml").unlink()
    problem = _only(validate_mappings(mapping_copy), "mappings/taxonomy.yaml")
    assert problem.message.startswith("missing")


def test_load_raises_with_all_problems(edit_yaml: EditYaml, mapping_copy: Path) -> None:
    edit_yaml("jira.yaml", lambda data: data.update(colour="blue", shade="dark"))
    with pytest.raises(MappingError) as caught:
        load_mappings(mapping_copy)
    assert len(caught.value.problems) == 2
    assert "mappings/jira.yaml: colour: unknown key" in str(caught.value)


def test_env_variable_selects_folder(
    monkeypatch: pytest.MonkeyPatch, mapping_copy: Path
) -> None:
    (mapping_copy / "notes.txt").write_text("todo", encoding="utf-8")
    monkeypatch.setenv("OPSROUTE_MAPPINGS_DIR", str(mapping_copy))
    problem = _only(validate_mappings(), "mappings/notes.txt")
    assert problem.message.startswith("unknown file")


def test_problem_line_shows_value() -> None:
    problem = MappingProblem(
        file="mappings/jira.yaml",
        key_path="values.priority.map.Urgent",
        value=9,
        message="priority maps to a whole number from 1 to 5",
    )
    assert str(problem) == (
        "mappings/jira.yaml: values.priority.map.Urgent: priority maps to a whole "
        "number from 1 to 5 (value: 9)"
    )


def test_problem_line_omits_missing_value() -> None:
    problem = MappingProblem(
        file="mappings/taxonomy.yaml", key_path="", value=NO_VALUE, message="missing"
    )
    assert str(problem) == "mappings/taxonomy.yaml: missing"
