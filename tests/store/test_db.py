"""Engine set-up and the UTC timestamp type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from router.store.db import make_engine
from router.store.errors import UnsupportedDatabaseError
from router.store.models import audit_log


def _sqlite_pragma(tmp_path: Path, name: str) -> object:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragma.db'}")
    try:
        with engine.connect() as connection:
            return connection.execute(text(f"PRAGMA {name}")).scalar_one()
    finally:
        engine.dispose()


def test_sqlite_engine_uses_wal(tmp_path: Path) -> None:
    assert _sqlite_pragma(tmp_path, "journal_mode") == "wal"


def test_sqlite_engine_enforces_foreign_keys(tmp_path: Path) -> None:
    assert _sqlite_pragma(tmp_path, "foreign_keys") == 1


def test_sqlite_engine_waits_when_busy(tmp_path: Path) -> None:
    assert _sqlite_pragma(tmp_path, "busy_timeout") == 30000


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_plain_postgres_url_uses_psycopg(scheme: str) -> None:
    engine = make_engine(f"{scheme}://opsroute@db.internal/opsroute")

    assert engine.url.drivername == "postgresql+psycopg"


def test_unsupported_backend_is_rejected() -> None:
    with pytest.raises(UnsupportedDatabaseError, match="'mysql'") as caught:
        make_engine("mysql://opsroute:hunter2@db.internal/opsroute")

    assert "hunter2" not in str(caught.value)


def _audit_row(at: datetime) -> dict[str, object]:
    return {
        "at": at,
        "event": "override",
        "ticket_key": None,
        "actor": "cli:alice",
        "inputs": {},
        "versions": {},
        "details": {},
    }


def test_naive_timestamp_is_rejected(session: Session) -> None:
    with pytest.raises(StatementError, match="Naive datetime"):
        session.execute(insert(audit_log), _audit_row(datetime(2025, 3, 1, 9, 30)))


def test_offset_timestamp_comes_back_utc(session: Session) -> None:
    tokyo = timezone(timedelta(hours=9))
    stored_at = datetime(2025, 3, 1, 18, 30, tzinfo=tokyo)
    session.execute(insert(audit_log), _audit_row(stored_at))
    session.commit()

    loaded = session.execute(select(audit_log.c.at)).scalar_one()

    assert loaded == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert loaded.tzinfo is UTC
