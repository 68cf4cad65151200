"""`opsroute report` and `opsroute report drift` on the demo's data."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from router.store import load_model_record, make_engine, save_model, session_factory
from router.store.models import shadow_decisions

from .support import DEMO_ARGUMENTS, DEMO_TICKETS, CliInvoker, DemoDatabase

ISSUE_KEYS = (
    "first_touch_accuracy",
    "transfers_per_ticket",
    "time_to_owner_p50_seconds",
    "sla_breaches_from_reassignment",
    "escalation_cycle_p50_seconds",
    "false_escalation_rate",
    "review_share",
    "tickets",
)


def test_report_json_after_demo(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    result = run_cli(["report", "--format", "json"], demo_database.env)

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ISSUE_KEYS:
        assert key in data
    assert data["tickets"] == DEMO_TICKETS
    assert data["simulated"] is True
    assert data["escalation_cycle_p50_seconds"] is None
    assert data["review_share"] == round(demo_database.report["review_share"], 4)
    assert 0.0 <= data["first_touch_accuracy"] <= 1.0
    assert data["models"]["active"] == demo_database.report["model_version"]


def test_report_text_says_simulated(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    result = run_cli(["report"], demo_database.env)

    assert result.exit_code == 0, result.output
    assert f"opsroute report: {DEMO_TICKETS} tickets" in result.stdout
    assert "NOTE: The follow-up events in this report were simulated" in result.stdout
    assert "first-touch accuracy" in result.stdout


def test_report_html_is_self_contained(
    demo_database: DemoDatabase, run_cli: CliInvoker, tmp_path: Path
) -> None:
    output = tmp_path / "report.html"
    result = run_cli(
        ["report", "--format", "html", "--output", str(output)], demo_database.env
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    page = output.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 4
    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page
    assert "threshold 0.90" in page


def test_report_rejects_bad_since(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    result = run_cli(["report", "--since", "last week"], demo_database.env)

    assert result.exit_code == 1
    assert "--since 'last week' is not a date" in result.stderr
    assert result.stdout == ""


def test_drift_runs_on_demo_data(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    result = run_cli(["report", "drift", "--json"], demo_database.env)

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["recent"]["tickets"] + data["reference"]["tickets"] == DEMO_TICKETS
    assert data["simulated"] is True
    assert isinstance(data["flags"], list)


def test_demo_rerun_adds_no_follow_up(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    before = json.loads(
        run_cli(["report", "--format", "json"], demo_database.env).stdout
    )

    rerun = run_cli(DEMO_ARGUMENTS, demo_database.env)
    after = json.loads(
        run_cli(["report", "--format", "json"], demo_database.env).stdout
    )

    assert rerun.exit_code == 0, rerun.output
    assert after["counts"] == before["counts"]
    assert after["tickets"] == DEMO_TICKETS


def test_demo_records_shadow_decisions(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    engine = make_engine(demo_database.url)
    try:
        with session_factory(engine).begin() as session:
            record = load_model_record(session)
            save_model(
                session,
                version="shadow-copy",
                kind=record.kind,
                dataset=record.dataset,
                label_set=record.label_set,
                metrics={},
                params={},
                data_hash="shadow-copy",
                artefact=record.artefact,
                activate=None,
            )
    finally:
        engine.dispose()

    result = run_cli(DEMO_ARGUMENTS, demo_database.env)
    engine = make_engine(demo_database.url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                select(func.count()).select_from(shadow_decisions)
            ).scalar_one()
    finally:
        engine.dispose()

    assert result.exit_code == 0, result.output
    assert stored == DEMO_TICKETS
