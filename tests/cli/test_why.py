"""`opsroute why`: a ticket's latest decision and its audit trail."""

from __future__ import annotations

import json

from .support import CliInvoker, DemoDatabase, Environment


def test_why_prints_decision_and_trail(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    key = demo_database.open_review_keys()[0]
    result = run_cli(["why", key], demo_database.env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{key}: ")
    assert lines[1].startswith("  routed to ")
    threshold = demo_database.report["threshold"]
    assert f"against threshold {threshold:.2f}" in lines[1]
    assert f"model {demo_database.report['model_version']}, policy " in result.stdout
    assert "  candidates: " in result.stdout
    assert "Audit trail:" in lines


def test_why_trail_lists_both_events(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    key = demo_database.open_review_keys()[0]
    result = run_cli(["why", key], demo_database.env)
    assert result.exit_code == 0, result.output
    trail = result.stdout.split("Audit trail:\n", 1)[1].splitlines()
    events = [line.split()[2] for line in trail]
    assert events == ["classification", "decision"]


def test_why_json_returns_decision(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    key = demo_database.open_review_keys()[0]
    result = run_cli(["why", key, "--json"], demo_database.env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    decision = data["decision"]
    assert decision["ticket_key"] == key
    assert decision["action"] in {"review", "forced_review"}
    assert decision["model_version"] == demo_database.report["model_version"]
    assert decision["explanation"]["chosen"]["group"] == decision["resolver_group"]


def test_why_json_lists_audit_events(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    key = demo_database.auto_routed_key()
    result = run_cli(["why", key, "--json"], demo_database.env)
    assert result.exit_code == 0, result.output
    trail = json.loads(result.stdout)["trail"]
    assert [entry["event"] for entry in trail[:2]] == ["classification", "decision"]
    assert trail[1]["details"]["action"] == "auto_route"
    # The demo's simulated follow-up comes after the decision and ends resolved.
    assert trail[-1]["event"] == "ticket_resolved"
    assert all(entry["details"]["simulated"] for entry in trail[2:])


def test_why_accepts_id_without_system(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    key = demo_database.auto_routed_key()
    _, external_id = key.split(":", 1)
    result = run_cli(["why", external_id, "--json"], demo_database.env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["decision"]["ticket_key"] == key


def test_why_unknown_ticket_exits_not_found(
    run_cli: CliInvoker, sqlite_env: Environment
) -> None:
    result = run_cli(["why", "jira:NOPE-404"], sqlite_env)
    assert result.exit_code == 1
    assert "Ticket 'jira:NOPE-404' not found" in result.stderr
    assert result.stdout == ""
