"""Helpers shared by the CLI commands: settings, database sessions, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.orm import Session

from router.settings import CoreSettings
from router.store import db


def settings() -> CoreSettings:
    """Return the settings from the environment and the settings file."""
    return CoreSettings()


@contextmanager
def open_session(core: CoreSettings, *, migrate: bool = True) -> Iterator[Session]:
    """Open a session on the configured database, applying migrations first if asked."""
    engine = db.make_engine(core.database_url)
    try:
        if migrate:
            db.upgrade(engine)
        with db.session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def print_json(data: Any) -> None:
    """Write one JSON object to stdout, and nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fail(message: str) -> None:
    """Stop the command with an error message on stderr and exit status 1."""
    raise click.ClickException(message)
