"""`opsroute connectors`: status, pause and resume, observe, backfill and check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from router.sandbox.servicenow import FakeServiceNow
from router.store import make_engine, session_factory
from router.store.connector_state import get_connector_state
from router.store.models import inbox_events

from .support import CliInvoker, Environment, environment

SNOW_PASSWORD = "cli-snow-password"


@pytest.fixture
def fake_servicenow() -> Iterator[FakeServiceNow]:
    with FakeServiceNow(password=SNOW_PASSWORD, lifetime_seconds=60) as fake:
        yield fake


@pytest.fixture
def env(
    database_url: str, tmp_path: Path, fake_servicenow: FakeServiceNow
) -> Environment:
    settings = environment(database_url, tmp_path / "cache")
    return settings | {
        "OPSROUTE_SERVICENOW_INSTANCE": fake_servicenow.url,
        "OPSROUTE_SERVICENOW_USER": fake_servicenow.user,
        "OPSROUTE_SERVICENOW_PASSWORD": SNOW_PASSWORD,
        "OPSROUTE_SERVICENOW_POLL": "true",
        "OPSROUTE_JIRA_URL": None,
        "OPSROUTE_SALESFORCE_SESSION_ID": None,
        "OPSROUTE_SETTINGS_FILE": None,
    }


def stored_state(database_url: str) -> tuple[bool, bool] | None:
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            state = get_connector_state(
                session, system="servicenow", instance="default"
            )
    finally:
        engine.dispose()
    return None if state is None else (state.paused, state.observe_only)


def test_status_lists_every_connector(run_cli: CliInvoker, env: Environment) -> None:
    result = run_cli(["connectors", "status"], env)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("NAME")
    names = [line.split()[0] for line in lines[1:]]
    assert names == ["jira/default", "salesforce/default", "servicenow/default"]
    servicenow = lines[3].split()
    assert servicenow[1] == "yes"
    assert "not polled" in lines[3]


def test_pause_and_resume_are_stored(
    run_cli: CliInvoker, env: Environment, database_url: str
) -> None:
    paused = run_cli(["connectors", "pause", "servicenow"], env)
    after_pause = stored_state(database_url)
    resumed = run_cli(["connectors", "resume", "servicenow/default"], env)
    after_resume = stored_state(database_url)

    assert paused.exit_code == 0, paused.output
    assert "Paused servicenow/default" in paused.output
    assert after_pause == (True, False)
    assert resumed.exit_code == 0, resumed.output
    assert after_resume == (False, False)


def test_observe_switch_is_stored(
    run_cli: CliInvoker, env: Environment, database_url: str
) -> None:
    result = run_cli(["connectors", "observe", "servicenow"], env)

    assert result.exit_code == 0, result.output
    assert stored_state(database_url) == (False, True)


def test_unknown_connector_names_the_choices(
    run_cli: CliInvoker, env: Environment
) -> None:
    result = run_cli(["connectors", "pause", "zendesk"], env)

    assert result.exit_code == 1
    assert "No connector named 'zendesk'" in result.output
    assert "servicenow/default" in result.output


def test_backfill_stores_the_backlog(
    run_cli: CliInvoker,
    env: Environment,
    database_url: str,
    fake_servicenow: FakeServiceNow,
) -> None:
    for number in range(1, 4):
        fake_servicenow.add_record(
            "incident",
            {
                "number": f"INC{number:07d}",
                "short_description": "VPN drops",
                "sys_updated_on": f"2026-11-0{number} 10:00:00",
            },
        )

    result = run_cli(
        ["connectors", "backfill", "servicenow", "--since", "2026-11-02"], env
    )

    assert result.exit_code == 0, result.output
    assert "stored 2" in result.output
    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        stored = session.execute(
            select(func.count()).select_from(inbox_events)
        ).scalar()
    engine.dispose()
    assert stored == 2


def test_backfill_rejects_a_bad_date(run_cli: CliInvoker, env: Environment) -> None:
    result = run_cli(["connectors", "backfill", "servicenow", "--since", "May"], env)

    assert result.exit_code == 1
    assert "--since: poll start 'May' is invalid" in result.output


def test_check_passes_with_good_setup(
    run_cli: CliInvoker, env: Environment, fake_servicenow: FakeServiceNow
) -> None:
    fake_servicenow.add_group("Service Desk")

    result = run_cli(["connectors", "check", "servicenow"], env)

    assert result.exit_code == 0, result.output
    assert result.output.count("ok     ") == 4


def test_check_says_password_is_wrong(run_cli: CliInvoker, env: Environment) -> None:
    result = run_cli(
        ["connectors", "check", "servicenow"],
        env | {"OPSROUTE_SERVICENOW_PASSWORD": "pw-wrong-5Tz"},
    )

    assert result.exit_code == 1
    assert "user name or password is wrong" in result.output
    assert "pw-wrong-5Tz" not in result.output


def test_check_says_role_is_missing(
    run_cli: CliInvoker, env: Environment, fake_servicenow: FakeServiceNow
) -> None:
    fake_servicenow.forbidden_tables.add("sys_journal_field")

    result = run_cli(["connectors", "check", "servicenow"], env)

    assert result.exit_code == 1
    assert "FAILED read work notes (sys_journal_field)" in result.output
    assert "lacks a role or permission" in result.output


def test_check_says_table_is_unknown(run_cli: CliInvoker, env: Environment) -> None:
    result = run_cli(
        ["connectors", "check", "servicenow"],
        env | {"OPSROUTE_SERVICENOW_TABLE": "u_x"},
    )

    assert result.exit_code == 1
    assert "ServiceNow has no table 'u_x'" in result.output


def test_check_of_unconfigured_connector_names_settings(
    run_cli: CliInvoker, env: Environment
) -> None:
    result = run_cli(["connectors", "check", "jira"], env)

    assert result.exit_code == 1
    assert "Not configured: set OPSROUTE_JIRA_URL" in result.output
