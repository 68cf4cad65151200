"""Engines, sessions and Alembic migrations for the store.

Alembic runs from the installed package: `alembic_config` builds its configuration in
code, with `script_location` pointing at the `migrations` folder next to this module,
so no alembic.ini is needed. To write a new revision during development, run

    python -c "from alembic import command; from router.store.db import alembic_config;
    command.revision(alembic_config('sqlite:///dev.db'), 'message', autogenerate=True)"

against a database that is at head.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pydantic_core
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from router.store.errors import UnsupportedDatabaseError

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Seconds a SQLite connection waits for another writer before it fails with
# "database is locked".
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0

# Key of the PostgreSQL advisory lock that serializes `upgrade` across replicas
# starting at the same time; the digits spell "opsroute" on a phone keypad.
MIGRATION_LOCK_KEY = 67776883

SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine for a SQLite or PostgreSQL URL.

    SQLite connections get WAL journaling, `synchronous=NORMAL`, foreign keys and a
    busy timeout. A bare `postgresql://` or `postgres://` URL is sent to the psycopg 3
    driver, the only PostgreSQL driver opsroute installs.

    Raises:
        UnsupportedDatabaseError: the URL names another backend.
    """
    parsed = _normalize_url(make_url(url))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(
            parsed,
            echo=echo,
            json_serializer=_dump_json,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    if backend == "postgresql":
        return create_engine(
            parsed, echo=echo, json_serializer=_dump_json, pool_pre_ping=True
        )
    raise UnsupportedDatabaseError(parsed.render_as_string(hide_password=True), backend)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory whose objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def dialect_insert(session: Session, table: Table) -> sqlite.Insert | postgresql.Insert:
    """Return an INSERT for the session's backend, which supports ON CONFLICT."""
    bind = session.get_bind()
    backend = bind.dialect.name
    if backend == "sqlite":
        return sqlite.insert(table)
    if backend == "postgresql":
        return postgresql.insert(table)
    raise UnsupportedDatabaseError(bind.engine.url.render_as_string(), backend)


def alembic_config(url: str | None = None) -> Config:
    """Build the Alembic configuration of the installed package.

    Args:
        url: database URL for Alembic commands that open their own connection, such
            as `command.revision(..., autogenerate=True)`; `upgrade` passes its
            connection instead.
    """
    config = Config()
    # Config values go through configparser interpolation, so a literal % is doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, *, revision: str = "head") -> None:
    """Apply the migrations up to `revision` (all of them by default)."""
    _run_with_connection(engine, command.upgrade, revision)


def downgrade(engine: Engine, *, revision: str) -> None:
    """Revert the migrations down to `revision` (`"base"` for an empty schema)."""
    _run_with_connection(engine, command.downgrade, revision)


def head_revision() -> str:
    """Return the newest revision shipped with the package."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"No Alembic revisions found under {MIGRATIONS_DIR}.")
    return head


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or None before the first migration."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def pending_migrations(engine: Engine) -> bool:
    """Return whether the database is behind (or apart from) the package's head."""
    script = ScriptDirectory.from_config(alembic_config())
    with engine.connect() as connection:
        applied = set(MigrationContext.configure(connection).get_current_heads())
    return applied != set(script.get_heads())


def _run_with_connection(engine: Engine, action: Any, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        config.attributes["connection"] = connection
        logger.info(
            "Running Alembic %s to %s on %s",
            action.__name__,
            revision,
            engine.url.render_as_string(hide_password=True),
        )
        action(config, revision)


def _normalize_url(url: URL) -> URL:
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in SUPPORTED_BACKENDS:
        raise UnsupportedDatabaseError(
            url.render_as_string(hide_password=True), url.get_backend_name()
        )
    return url


def _dump_json(value: Any) -> str:
    # pydantic-core's encoder took a third of the time of json.dumps on a ticket
    # payload, and JSON encoding is a large share of save_decisions.
    return pydantic_core.to_json(value).decode()


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # NORMAL is durable against application crashes in WAL mode; a power cut can lose
    # the last commits but never corrupts the file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
    cursor.close()
