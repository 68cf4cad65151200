"""`opsroute demo` on the bundled helpdesk tickets, end to end."""

from __future__ import annotations

import pytest

from .support import DEMO_TICKETS, CliInvoker, DemoDatabase, DemoRun

REPORT_KEYS = (
    "dataset",
    "tickets",
    "accuracy",
    "macro_f1",
    "auto_route_share",
    "auto_route_precision",
    "review_share",
    "tickets_per_second",
    "model_version",
)
FRACTION_KEYS = (
    "accuracy",
    "macro_f1",
    "auto_route_share",
    "auto_route_precision",
    "review_share",
    "forced_review_share",
)


@pytest.mark.parametrize("key", REPORT_KEYS)
def test_demo_json_has_report_key(helpdesk_demo: DemoRun, key: str) -> None:
    assert key in helpdesk_demo.report


@pytest.mark.parametrize("key", FRACTION_KEYS)
def test_demo_fractions_within_unit_interval(helpdesk_demo: DemoRun, key: str) -> None:
    value = helpdesk_demo.report[key]
    assert value >= 0.0
    assert value <= 1.0


def test_demo_routes_requested_ticket_count(helpdesk_demo: DemoRun) -> None:
    report = helpdesk_demo.report
    assert report["dataset"] == "helpdesk"
    assert report["tickets"] == DEMO_TICKETS
    assert sum(report["by_system"].values()) == DEMO_TICKETS


def test_demo_spreads_tickets_over_systems(helpdesk_demo: DemoRun) -> None:
    by_system = helpdesk_demo.report["by_system"]
    assert by_system == {"servicenow": 20, "jira": 20, "salesforce": 20}


def test_demo_shares_add_up(helpdesk_demo: DemoRun) -> None:
    report = helpdesk_demo.report
    total = report["auto_route_share"] + report["review_share"]
    assert total == pytest.approx(1.0, abs=1e-3)


def test_first_demo_run_trains_model(helpdesk_demo: DemoRun) -> None:
    report = helpdesk_demo.report
    assert report["model_trained"] is True
    assert report["training_seconds"] > 0
    assert report["model_version"].startswith("helpdesk-")


def test_demo_reports_positive_throughput(helpdesk_demo: DemoRun) -> None:
    assert helpdesk_demo.report["tickets_per_second"] > 0


def test_second_demo_run_reuses_model(
    demo_database: DemoDatabase, helpdesk_demo: DemoRun
) -> None:
    report = demo_database.report
    assert report["model_trained"] is False
    assert report["training_seconds"] is None
    assert report["model_version"] == helpdesk_demo.report["model_version"]


def test_second_demo_run_repeats_figures(
    demo_database: DemoDatabase, helpdesk_demo: DemoRun
) -> None:
    first, second = helpdesk_demo.report, demo_database.report
    assert second["accuracy"] == first["accuracy"]
    assert second["macro_f1"] == first["macro_f1"]
    assert second["auto_route_share"] == first["auto_route_share"]


def test_demo_stores_every_decision(demo_database: DemoDatabase) -> None:
    ticket_count, decision_count = demo_database.count_rows()
    assert ticket_count == DEMO_TICKETS
    assert decision_count == DEMO_TICKETS


def test_demo_opens_review_items(demo_database: DemoDatabase) -> None:
    expected = round(demo_database.report["review_share"] * DEMO_TICKETS)
    assert expected > 0
    assert len(demo_database.open_review_keys()) == expected


def test_demo_text_report_suggests_why(
    demo_database: DemoDatabase, run_cli: CliInvoker
) -> None:
    result = run_cli(
        ["demo", "--dataset", "helpdesk", "--limit", "6"], demo_database.env
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("opsroute demo: dataset helpdesk")
    assert "(reused from the store)" in result.stdout
    assert "    opsroute why jira:" in result.stdout


def test_demo_model_stores_its_held_out_precision(helpdesk_demo: DemoRun) -> None:
    held_out = helpdesk_demo.model.metrics["held_out"]
    # The same figure as the report's, which `model promote` checks.
    assert held_out["threshold"] == 0.9
    assert 0.9 < held_out["auto_route_precision"] <= 1.0
    assert 0.0 < held_out["auto_route_share"] < 1.0
