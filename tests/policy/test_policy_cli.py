"""`opsroute policy test` on the shipped examples, and the policy file checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from router.cli.main import cli
from router.mapping import default_mappings_dir, validate_mappings

EXAMPLES = Path(str(default_mappings_dir())) / "examples"


def policy_test(*arguments: str) -> Any:
    result = CliRunner().invoke(cli, ["policy", "test", *arguments, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_billing_dispute_example() -> None:
    output = policy_test(str(EXAMPLES / "billing-dispute.json"))
    assert output["route_to"] == "Finance Operations"
    assert output["action"] == "auto_route"
    assert output["tasks"] == [
        {
            "type": "refund_approval",
            "title": "Approve the refund of the duplicate charge in 00004711",
            "assignee": "Finance Operations",
        }
    ]
    assert [item["target"] for item in output["notifications"]] == [
        "account_manager:dana.lopez@example.com"
    ]
    assert output["escalation"] is None
    assert output["rules_fired"] == [
        "billing-dispute-high-arr",
        "billing-dispute-renewal-soon",
    ]


def test_billing_dispute_far_from_renewal() -> None:
    output = policy_test(
        str(EXAMPLES / "billing-dispute.json"), "--now", "2025-12-01T00:00:00Z"
    )
    assert output["notifications"] == []
    assert output["rules_fired"] == ["billing-dispute-high-arr"]


def test_production_degradation_example() -> None:
    output = policy_test(str(EXAMPLES / "production-degradation.json"))
    assert output["route_to"] == "Platform Operations"
    assert output["escalation"] == "premium-incident"
    assert [task["type"] for task in output["tasks"]] == ["customer_communications"]
    assert output["rules_fired"] == [
        "degradation-from-monitoring",
        "degradation-premium-sla",
        "degradation-customers-affected",
    ]


def test_internal_degradation_does_not_page(tmp_path: Path) -> None:
    ticket = json.loads((EXAMPLES / "production-degradation.json").read_text())
    ticket["context"]["impact"] = {"scope": "internal", "customers_affected": 0}
    path = tmp_path / "internal.json"
    path.write_text(json.dumps(ticket))
    output = policy_test(str(path))
    assert output["route_to"] == "Platform Operations"
    assert output["escalation"] is None
    assert output["tasks"] == []


def test_provisioning_failure_example() -> None:
    output = policy_test(str(EXAMPLES / "provisioning-failure.json"))
    assert output["route_to"] == "Integration Operations"
    assert output["tasks"][0]["type"] == "rerun_handoff"
    assert "SO-88412" in output["tasks"][0]["title"]
    assert output["rules_fired"] == ["provisioning-handoff-failed"]


def test_seat_overage_example() -> None:
    output = policy_test(str(EXAMPLES / "seat-overage-access.json"))
    assert output["route_to"] == "Commercial Operations"
    assert output["tasks"][0]["type"] == "seat_approval"
    assert output["tasks"][0]["assignee"] == "Commercial Operations"
    assert output["rules_fired"] == ["seat-overage-finance-hold"]


def test_seat_request_without_hold_goes_nowhere(tmp_path: Path) -> None:
    ticket = json.loads((EXAMPLES / "seat-overage-access.json").read_text())
    ticket["context"]["finance_hold"] = False
    path = tmp_path / "no-hold.json"
    path.write_text(json.dumps(ticket))
    output = policy_test(str(path))
    assert output["route_to"] is None
    assert output["action"] == "review"
    assert output["rules_fired"] == []


def test_model_output_option_routes_unmatched(tmp_path: Path) -> None:
    ticket = json.loads((EXAMPLES / "seat-overage-access.json").read_text())
    ticket["context"] = {}
    path = tmp_path / "plain.json"
    path.write_text(json.dumps(ticket))
    output = policy_test(str(path), "--group", "Access", "--confidence", "0.95")
    assert output["route_to"] == "Access"
    assert output["action"] == "auto_route"


def test_regulated_workflow_forces_review(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(str(default_mappings_dir()), folder)
    settings = folder / "policy.yaml"
    settings.write_text(
        settings.read_text().replace(
            "regulated_workflows: [data_erasure, legal_hold]",
            "regulated_workflows: [refund]",
        )
    )
    output = policy_test(
        str(EXAMPLES / "billing-dispute.json"), "--mappings", str(folder)
    )
    assert output["route_to"] == "Finance Operations"
    assert output["action"] == "forced_review"


def test_text_output_names_rules() -> None:
    result = CliRunner().invoke(
        cli, ["policy", "test", str(EXAMPLES / "billing-dispute.json")]
    )
    assert result.exit_code == 0, result.output
    assert "rule billing-dispute-high-arr matched" in result.output
    assert "250000" not in result.output


def test_missing_ticket_file_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["policy", "test", str(tmp_path / "none.json")])
    assert result.exit_code == 1
    assert "file not found" in result.output


def test_bad_now_error() -> None:
    result = CliRunner().invoke(
        cli,
        ["policy", "test", str(EXAMPLES / "billing-dispute.json"), "--now", "soon"],
    )
    assert result.exit_code == 1
    assert "is not an ISO 8601" in result.output


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        ("route_to: Finance Operations", "is not a resolver group"),
        ("escalation: premium-incident", "names no file in escalation/"),
        ("matches: 'degrad", "is not a valid regular expression"),
        ("field: requester", "is not a ticket field"),
    ],
)
def test_validate_reports_policy_problems(
    tmp_path: Path, replace: str, expected: str
) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(str(default_mappings_dir()), folder)
    broken = {
        "route_to: Finance Operations": "route_to: Finance Ops",
        "escalation: premium-incident": "escalation: gold-incident",
        "matches: 'degrad": "matches: '(degrad",
        "field: requester": "field: requestor",
    }[replace]
    for path in (folder / "policies").glob("*.yaml"):
        path.write_text(path.read_text().replace(replace, broken, 1))
    problems = validate_mappings(folder)
    assert any(expected in problem.message for problem in problems), problems
