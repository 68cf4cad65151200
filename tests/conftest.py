"""Database fixtures shared by the test suite.

`database_url` runs each test that uses it on SQLite and on PostgreSQL. The
PostgreSQL case needs `OPSROUTE_TEST_POSTGRES_URL` and gives every test a schema of
its own, so tests running in parallel (pytest-xdist) never share tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from router.store.db import make_engine, session_factory, upgrade

POSTGRES_URL_VARIABLE = "OPSROUTE_TEST_POSTGRES_URL"


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.external_service),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of an empty database, a SQLite file or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'opsroute.db'}"
        return
    yield from _postgres_schema_url()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """Yield an engine on the empty test database."""
    created = make_engine(database_url)
    yield created
    created.dispose()


@pytest.fixture
def migrated_engine(engine: Engine) -> Engine:
    """Return the engine after all migrations have been applied."""
    upgrade(engine)
    return engine


@pytest.fixture
def session(migrated_engine: Engine) -> Iterator[Session]:
    """Yield a session on the migrated database; the test commits what it needs."""
    with session_factory(migrated_engine)() as opened:
        yield opened


def _postgres_schema_url() -> Iterator[str]:
    base_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not base_url:
        pytest.skip(
            f"PostgreSQL tests are skipped: set {POSTGRES_URL_VARIABLE}, for example "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        )

    schema = f"test_{uuid.uuid4().hex[:16]}"
    url = make_url(base_url)
    existing = url.query.get("options", ())
    options = [existing] if isinstance(existing, str) else list(existing)
    options.append(f"-csearch_path={schema}")
    admin = make_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url.update_query_dict({"options": " ".join(options)}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as connection:
            # A connection a test left open would otherwise block the drop forever.
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
