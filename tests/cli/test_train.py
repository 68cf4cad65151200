"""`opsroute train` and `opsroute evaluate` on an admin's CSV export."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result

from router.mapping import load_mappings
from router.store import list_models, make_engine, session_factory, upgrade

from .support import (
    CliInvoker,
    Environment,
    environment,
    invoke_cli,
    write_tickets_csv,
)

CSV_OPTIONS = ("--text", "short_description,details", "--label", "assignment_group")


def stored_versions(env: Environment) -> list[str]:
    url = env["OPSROUTE_DATABASE_URL"]
    assert url is not None
    engine = make_engine(url)
    try:
        # Commands that fail early never create the schema.
        upgrade(engine)
        with session_factory(engine)() as session:
            return [info.version for info in list_models(session, kind="routing")]
    finally:
        engine.dispose()


@dataclass(frozen=True)
class CommandRun:
    """One command run on its own database, and the settings it ran with."""

    env: Environment
    result: Result


def run_on_fresh_database(
    factory: pytest.TempPathFactory, arguments: list[str]
) -> CommandRun:
    folder = factory.mktemp("cli")
    export = write_tickets_csv(folder / "tickets.csv")
    env = environment(f"sqlite:///{folder / 'opsroute.db'}", folder / "cache")
    result = invoke_cli([*arguments, "--csv", str(export), *CSV_OPTIONS], env)
    return CommandRun(env=env, result=result)


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory) -> CommandRun:
    """Return one `train` run with text output, shared by the tests that read it."""
    return run_on_fresh_database(tmp_path_factory, ["train"])


@pytest.fixture(scope="module")
def evaluate_run(tmp_path_factory: pytest.TempPathFactory) -> CommandRun:
    """Return one `evaluate` run with text output, shared by the tests that read it."""
    return run_on_fresh_database(tmp_path_factory, ["evaluate"])


def test_train_csv_stores_model(train_run: CommandRun) -> None:
    result = train_run.result
    assert result.exit_code == 0, result.output
    first_line = result.stdout.splitlines()[0]
    version = first_line.removeprefix("Stored model ").removesuffix(" (active).")
    assert version.startswith("tickets-")
    assert stored_versions(train_run.env) == [version]


def test_train_prints_held_out_figures(train_run: CommandRun) -> None:
    result = train_run.result
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "  trained on 67 examples, measured on 17 held out"
    assert lines[2].startswith("  accuracy ")
    assert ", macro-F1 " in lines[2]
    threshold = load_mappings().thresholds.default
    assert lines[3].startswith(f"  at threshold {threshold:.2f}: auto-routes ")


def test_train_json_prints_one_object(
    run_cli: CliInvoker, sqlite_env: Environment, tickets_csv: Path
) -> None:
    result = run_cli(
        ["train", "--csv", str(tickets_csv), *CSV_OPTIONS, "--json"], sqlite_env
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["dataset"] == "tickets"
    assert data["examples"] == 84
    assert data["train"] + data["test"] == 84
    assert data["skipped_labels"] == {}
    assert data["active"] is True
    assert set(data["groups"]) == {"Access", "Hardware", "Storage"}
    assert 0.0 <= data["accuracy"] <= 1.0


def test_train_no_activate_keeps_model_inactive(
    run_cli: CliInvoker, sqlite_env: Environment, tickets_csv: Path
) -> None:
    result = run_cli(
        ["train", "--csv", str(tickets_csv), *CSV_OPTIONS, "--no-activate", "--json"],
        sqlite_env,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["active"] is False


def test_train_rejects_label_in_text(
    run_cli: CliInvoker, sqlite_env: Environment, tickets_csv: Path
) -> None:
    arguments = ["train", "--csv", str(tickets_csv)]
    arguments += ["--text", "short_description,assignment_group"]
    arguments += ["--label", "assignment_group"]
    result = run_cli(arguments, sqlite_env)
    assert result.exit_code == 1
    assert "column(s) 'assignment_group' reveal the label" in result.stderr
    assert result.stdout == ""


def test_train_missing_column_lists_header(
    run_cli: CliInvoker, sqlite_env: Environment, tickets_csv: Path
) -> None:
    arguments = ["train", "--csv", str(tickets_csv)]
    arguments += ["--text", "summary", "--label", "assignment_group"]
    result = run_cli(arguments, sqlite_env)
    assert result.exit_code == 1
    assert "column(s) 'summary' not found" in result.stderr
    expected = "'number', 'short_description', 'details', 'assignment_group'"
    assert f"the file has {expected}" in result.stderr


def test_train_csv_needs_text_and_label(
    run_cli: CliInvoker, sqlite_env: Environment, tickets_csv: Path
) -> None:
    result = run_cli(["train", "--csv", str(tickets_csv)], sqlite_env)
    assert result.exit_code == 1
    assert "--csv needs --text COLUMNS" in result.stderr


def test_train_single_group_exits_with_message(
    run_cli: CliInvoker, sqlite_env: Environment, tmp_path: Path
) -> None:
    export = write_tickets_csv(tmp_path / "one.csv", groups=["Hardware"])
    result = run_cli(["train", "--csv", str(export), *CSV_OPTIONS], sqlite_env)
    assert result.exit_code == 1
    assert "training needs at least two groups" in result.stderr
    assert stored_versions(sqlite_env) == []


def test_evaluate_prints_both_models(evaluate_run: CommandRun) -> None:
    result = evaluate_run.result
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Dataset tickets: 67 training and 17 held-out tickets"
    assert lines[1].split() == ["opsroute", "reference"]
    assert lines[2].split()[0] == "accuracy"
    assert len(lines[2].split()) == 3
    assert lines[3].split()[0] == "macro-F1"


def test_evaluate_lists_each_group(evaluate_run: CommandRun) -> None:
    result = evaluate_run.result
    assert result.exit_code == 0, result.output
    groups = [line.split()[0] for line in result.stdout.splitlines()[-3:]]
    assert groups == ["Access", "Hardware", "Storage"]


def test_evaluate_json_has_both_models(
    run_cli: CliInvoker, sqlite_env: Environment, tickets_csv: Path
) -> None:
    result = run_cli(
        ["evaluate", "--csv", str(tickets_csv), *CSV_OPTIONS, "--json"], sqlite_env
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["test"] == 17
    assert set(data["opsroute"]["groups"]) == {"Access", "Hardware", "Storage"}
    assert set(data["reference"]["groups"]) == {"Access", "Hardware", "Storage"}
    assert "auto_route_share" in data["opsroute"]
    assert "auto_route_share" not in data["reference"]
