"""The 0007_analytics migration keeps the active model on a database with data."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select

from router.store.db import downgrade, upgrade
from router.store.models import models


def test_upgrade_keeps_active_model_active(migrated_engine: Engine) -> None:
    downgrade(migrated_engine, revision="0006_slack")
    now = datetime(2026, 11, 2, tzinfo=UTC)
    rows = [
        {
            "version": version,
            "kind": "routing",
            "dataset": "helpdesk",
            "label_set": [],
            "metrics": {},
            "params": {},
            "data_hash": version,
            "artefact": b"x",
            "created_at": now,
            "active": active,
        }
        for version, active in (("old", False), ("live", True))
    ]
    # The rows leave out `state`, which exists only from 0007_analytics on.
    with migrated_engine.begin() as connection:
        connection.execute(insert(models), rows)

    upgrade(migrated_engine)
    with migrated_engine.connect() as connection:
        result = connection.execute(select(models.c.version, models.c.state))
        states = {row.version: row.state for row in result}

    assert states == {"old": "retired", "live": "active"}
