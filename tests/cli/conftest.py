"""Fixtures for the CLI tests: settings, a small CSV export and the helpdesk demo.

The helpdesk demo trains a model on about 3,000 tickets, which took 12 s on an idle
2-core machine, so it runs once per test session. pytest-xdist workers share that
run through a file lock in the session's common temporary folder. Each test that
needs demo data gets a database of its own, on SQLite or PostgreSQL: the trained
model is copied into it and the demo is run again, which reuses the model and took
0.3 to 0.7 s there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.store import load_model_record, make_engine, session_factory

from .support import (
    DEMO_ARGUMENTS,
    CliInvoker,
    DemoDatabase,
    DemoRun,
    Environment,
    copy_model,
    environment,
    exclusive_lock,
    invoke_cli,
    write_tickets_csv,
)


@pytest.fixture
def run_cli() -> CliInvoker:
    """Return the function that runs `opsroute` in-process."""
    return invoke_cli


@pytest.fixture
def sqlite_env(tmp_path: Path) -> Environment:
    """Return CLI settings for an empty SQLite file and a cache under tmp_path."""
    return environment(f"sqlite:///{tmp_path / 'opsroute.db'}", tmp_path / "cache")


@pytest.fixture
def tickets_csv(tmp_path: Path) -> Path:
    """Return a CSV export of 84 tickets over three groups."""
    return write_tickets_csv(tmp_path / "tickets.csv")


@pytest.fixture(scope="session")
def helpdesk_demo(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> DemoRun:
    """Run the helpdesk demo once for all workers and return its report and model."""
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        # Every xdist worker has its own base folder inside the session's folder.
        root = root.parent
    folder = root / "helpdesk-demo"
    report_file = folder / "report.json"
    database_url = f"sqlite:///{folder / 'opsroute.db'}"
    with exclusive_lock(root / "helpdesk-demo.lock"):
        if not report_file.is_file():
            folder.mkdir(exist_ok=True)
            result = invoke_cli(
                DEMO_ARGUMENTS, environment(database_url, folder / "cache")
            )
            if result.exit_code != 0:
                raise RuntimeError(
                    f"opsroute demo exited with {result.exit_code}: {result.output}"
                ) from result.exception
            report_file.write_text(result.stdout, encoding="utf-8")
    report = json.loads(report_file.read_text(encoding="utf-8"))

    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            model = load_model_record(session, version=report["model_version"])
    finally:
        engine.dispose()
    return DemoRun(report=report, model=model)


@pytest.fixture
def demo_database(
    database_url: str, helpdesk_demo: DemoRun, tmp_path: Path
) -> DemoDatabase:
    """Return a SQLite or PostgreSQL database after a demo run with the stored model."""
    copy_model(database_url, helpdesk_demo.model)
    env = environment(database_url, tmp_path / "cache")
    result = invoke_cli(DEMO_ARGUMENTS, env)
    if result.exit_code != 0:
        raise RuntimeError(
            f"opsroute demo exited with {result.exit_code}: {result.output}"
        ) from result.exception
    return DemoDatabase(url=database_url, env=env, report=json.loads(result.stdout))
