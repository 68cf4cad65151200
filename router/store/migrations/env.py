"""Alembic environment of the store, used by `router.store.db`.

`db.upgrade` passes an open connection in `config.attributes["connection"]`, so the
migration runs inside the caller's transaction (and, on PostgreSQL, under whatever
`search_path` the URL sets). Without one, a connection is made from the
`sqlalchemy.url` option; offline mode renders SQL from that URL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from router.store.db import make_engine
from router.store.models import Base

config = context.config


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot alter most column properties in place, so autogenerate
        # writes batch operations that copy the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return

    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError(
            "Alembic has no connection and no sqlalchemy.url; build the configuration "
            "with router.store.db.alembic_config(url) or call router.store.db.upgrade."
        )
    engine = make_engine(url)
    try:
        with engine.begin() as new_connection:
            _configure_and_run(new_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
