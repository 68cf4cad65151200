"""The service's leased scheduler runs the escalation timers from the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from service.support import service_settings, wait_for
from sqlalchemy import Engine, func, select

from router.escalation.records import use_mappings
from router.escalation.service import start_escalation
from router.mapping import load_mappings
from router.service.jobs import ESCALATION_JOB
from router.service.runtime import ServiceRuntime
from router.store.db import session_factory
from router.store.models import outbox_actions

TICKET = "servicenow:INC0000077"


def notification_count(engine: Engine) -> int:
    with session_factory(engine)() as session:
        return session.execute(
            select(func.count()).select_from(outbox_actions)
        ).scalar_one()


def test_scheduler_fires_stored_timer(
    migrated_engine: Engine,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPSROUTE_ESCALATION_TICK_SECONDS", "1")
    use_mappings(load_mappings())
    # A replica that died left a timer that fell due a minute ago.
    started = datetime.now(UTC) - timedelta(minutes=11)
    with session_factory(migrated_engine).begin() as session:
        start_escalation(
            session,
            ticket_key=TICKET,
            policy="premium-incident",
            now=started,
            priority=1,
        )
    before = notification_count(migrated_engine)

    runtime = ServiceRuntime(
        service_settings(database_url, tmp_path),
        connectors={},
        mappings=load_mappings(),
    )
    runtime.scheduler.start()
    try:
        fired = wait_for(lambda: notification_count(migrated_engine) > before)
    finally:
        runtime.scheduler.stop()
        runtime.engine.dispose()
        use_mappings(None)
    assert ESCALATION_JOB in [job.name for job in runtime.scheduler.jobs]
    assert before == 2
    assert fired
    assert notification_count(migrated_engine) == 4
