"""`opsroute review list` and `review resolve` on the demo's review queue."""

from __future__ import annotations

import json

from .support import CliInvoker, DemoDatabase, Environment

ACTOR = "cli:reviewer"


def test_review_list_shows_open_items(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    result = run_cli(["review", "list", "--limit", "60"], demo_database.env)
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.splitlines()
    listed = [line.split()[0] for line in lines[::2]]
    assert listed == demo_database.open_review_keys()
    assert header.startswith(
        f"{len(demo_database.open_review_keys())} open review items"
    )


def test_review_list_counts_beyond_limit(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    result = run_cli(["review", "list", "--limit", "1", "--json"], demo_database.env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["items"]) == 1
    assert report["open"] == len(demo_database.open_review_keys())


def test_review_list_json_gives_candidates(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    result = run_cli(["review", "list", "--limit", "2", "--json"], demo_database.env)
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)["items"]
    assert len(items) == 2
    assert items[0]["ticket"] == demo_database.open_review_keys()[0]
    assert len(items[0]["candidates"]) == 3
    assert items[0]["suggested_group"] == items[0]["candidates"][0]["group"]


def test_review_list_empty_queue_says_so(
    run_cli: CliInvoker, sqlite_env: Environment
) -> None:
    result = run_cli(["review", "list"], sqlite_env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "The review queue is empty.\n"


def test_review_resolve_closes_item(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    key = demo_database.open_review_keys()[0]
    result = run_cli(
        ["review", "resolve", key, "Hardware", "--actor", ACTOR], demo_database.env
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Resolved {key}: Hardware (")
    assert result.stdout.endswith(f"by {ACTOR}.\n")
    assert key not in demo_database.open_review_keys()


def test_why_shows_review_resolved_event(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    key = demo_database.open_review_keys()[0]
    resolved = run_cli(
        ["review", "resolve", key, "Storage", "--actor", ACTOR], demo_database.env
    )
    assert resolved.exit_code == 0, resolved.output
    result = run_cli(["why", key, "--json"], demo_database.env)
    assert result.exit_code == 0, result.output
    trail = json.loads(result.stdout)["trail"]
    assert [entry["event"] for entry in trail][-1] == "review_resolved"
    assert trail[-1]["actor"] == ACTOR
    assert trail[-1]["details"]["resolved_group"] == "Storage"


def test_review_resolve_twice_fails(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    key = demo_database.open_review_keys()[0]
    arguments = ["review", "resolve", key, "Access", "--actor", ACTOR]
    assert run_cli(arguments, demo_database.env).exit_code == 0
    result = run_cli(arguments, demo_database.env)
    assert result.exit_code == 1
    assert f"Ticket '{key}' has no open review item" in result.stderr


def test_review_resolve_auto_routed_ticket_fails(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    key = demo_database.auto_routed_key()
    result = run_cli(
        ["review", "resolve", key, "Access", "--actor", ACTOR], demo_database.env
    )
    assert result.exit_code == 1
    assert f"Ticket '{key}' has no open review item" in result.stderr


def test_review_resolve_unknown_group_lists_groups(
    run_cli: CliInvoker, sqlite_env: Environment
) -> None:
    result = run_cli(["review", "resolve", "jira:HELP-1", "Facilities"], sqlite_env)
    assert result.exit_code == 1
    assert "group 'Facilities' is not in the taxonomy" in result.stderr
    assert "expected one of SPARK, HBASE," in result.stderr
    assert ", Purchase, Storage, Finance Operations," in result.stderr
    assert result.stderr.rstrip().endswith(", Platform Operations.")


def test_review_resolve_unknown_ticket_fails(
    run_cli: CliInvoker, sqlite_env: Environment
) -> None:
    result = run_cli(["review", "resolve", "jira:NOPE-404", "Hardware"], sqlite_env)
    assert result.exit_code == 1
    assert "Ticket 'jira:NOPE-404' not found" in result.stderr
