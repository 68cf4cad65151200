"""Alembic migrations of the store on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

import router.store
from router.store.db import (
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    pending_migrations,
    upgrade,
)
from router.store.models import Base

STORE_TABLES = {"tickets", "decisions", "review_items", "models", "audit_log"}


def test_empty_database_has_no_revision(engine: Engine) -> None:
    assert current_revision(engine) is None


def test_empty_database_has_pending_migrations(engine: Engine) -> None:
    assert pending_migrations(engine) is True


def test_upgrade_creates_store_tables(migrated_engine: Engine) -> None:
    tables = set(inspect(migrated_engine).get_table_names())

    assert STORE_TABLES <= tables


def test_upgrade_reaches_head_revision(migrated_engine: Engine) -> None:
    assert current_revision(migrated_engine) == head_revision()


def test_upgrade_leaves_nothing_pending(migrated_engine: Engine) -> None:
    assert pending_migrations(migrated_engine) is False


def test_second_upgrade_changes_nothing(migrated_engine: Engine) -> None:
    upgrade(migrated_engine)

    assert current_revision(migrated_engine) == head_revision()


def test_downgrade_to_base_drops_tables(migrated_engine: Engine) -> None:
    downgrade(migrated_engine, revision="base")
    tables = set(inspect(migrated_engine).get_table_names())

    assert tables & STORE_TABLES == set()
    assert current_revision(migrated_engine) is None


def test_upgrade_after_downgrade_restores_head(migrated_engine: Engine) -> None:
    downgrade(migrated_engine, revision="base")
    upgrade(migrated_engine)

    assert current_revision(migrated_engine) == head_revision()


def test_tables_match_migrated_schema(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_history_has_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()

    assert len(heads) == 1


def test_script_location_is_inside_package() -> None:
    location = Path(alembic_config().get_main_option("script_location") or "")
    package_dir = Path(router.store.__file__).resolve().parent

    assert location == package_dir / "migrations"
    assert (location / "env.py").is_file()
