"""Exit codes and errors of `opsroute report drift` on hand-made windows."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

from router.cli.main import cli

from .support import START, decide


def _run(arguments: list[str], database_url: str, tmp_path: Path) -> Result:
    env = {
        "OPSROUTE_DATABASE_URL": database_url,
        "OPSROUTE_MODEL_CACHE_DIR": str(tmp_path / "cache"),
        "OPSROUTE_MAPPINGS_DIR": None,
    }
    return CliRunner().invoke(cli, arguments, env=env)


def _fill(session: Session, *, shifted: bool) -> None:
    for number in range(40):
        old = START + timedelta(days=1, hours=number)
        decide(session, f"OLD-{number}", "Hardware", at=old, confidence=0.95)
        group = "Access" if shifted else "Hardware"
        new = START + timedelta(days=40, hours=number)
        decide(session, f"NEW-{number}", group, at=new, confidence=0.95)
    session.commit()


def test_drift_exits_zero_without_flag(
    session: Session, database_url: str, tmp_path: Path
) -> None:
    _fill(session, shifted=True)

    result = _run(["report", "drift", "--json"], database_url, tmp_path)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["drifted"] is True


def test_fail_on_drift_exits_one(
    session: Session, database_url: str, tmp_path: Path
) -> None:
    _fill(session, shifted=True)

    result = _run(["report", "drift", "--fail-on-drift"], database_url, tmp_path)

    assert result.exit_code == 1
    assert "label mix shifted" in result.stdout


def test_fail_on_drift_passes_stable_data(
    session: Session, database_url: str, tmp_path: Path
) -> None:
    _fill(session, shifted=False)

    result = _run(["report", "drift", "--fail-on-drift"], database_url, tmp_path)

    assert result.exit_code == 0, result.output
    assert "No measure moved beyond its limit." in result.stdout


def test_drift_on_empty_store_fails(
    session: Session, database_url: str, tmp_path: Path
) -> None:
    result = _run(["report", "drift"], database_url, tmp_path)

    assert result.exit_code == 1
    assert "No decisions are stored yet" in result.stderr


def test_report_json_is_only_stdout(
    session: Session, database_url: str, tmp_path: Path
) -> None:
    decide(session, "ONE-1", "Hardware")
    session.commit()

    result = _run(["report", "--format", "json"], database_url, tmp_path)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tickets"] == 1
