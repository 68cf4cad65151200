"""Write transactions that take SQLite's write lock up front."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker


@contextmanager
def write_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session in a transaction that commits on exit and rolls back on error.

    On SQLite the transaction starts with BEGIN IMMEDIATE. A deferred transaction
    that reads first and writes later fails at once with "database is locked" when
    another connection wrote in between, whereas BEGIN IMMEDIATE waits for the lock
    (up to the busy timeout set in `router.store.db`).
    """
    with factory() as session, session.begin():
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE"))
        yield session
