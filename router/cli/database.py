"""`opsroute db`: apply and inspect database migrations."""

from __future__ import annotations

import click

from router.cli.common import settings
from router.store import db


@click.group("db")
def database() -> None:
    """Manage the store's schema."""


@database.command("upgrade")
def upgrade() -> None:
    """Apply every pending migration to the configured database."""
    engine = db.make_engine(settings().database_url)
    try:
        db.upgrade(engine)
        click.echo(f"Database is at revision {db.current_revision(engine)}.")
    finally:
        engine.dispose()


@database.command("status")
def status() -> None:
    """Print the current and the latest revision."""
    engine = db.make_engine(settings().database_url)
    try:
        current = db.current_revision(engine)
        click.echo(f"current {current or 'none'}, latest {db.head_revision()}")
    finally:
        engine.dispose()
