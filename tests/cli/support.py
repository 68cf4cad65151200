"""Helpers for the CLI tests: settings, a small CSV export and demo databases."""

from __future__ import annotations

import csv
import fcntl
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import func, select

from router.cli.main import cli
from router.store import (
    ModelRecord,
    list_open_reviews,
    make_engine,
    save_model,
    session_factory,
    upgrade,
)
from router.store.models import decisions, tickets

Environment = dict[str, str | None]
CliInvoker = Callable[[Sequence[str], Environment], Result]

DEMO_ARGUMENTS = ("demo", "--dataset", "helpdesk", "--limit", "60", "--json")
DEMO_TICKETS = 60

CSV_COLUMNS = ("number", "short_description", "details", "assignment_group")
CSV_GROUP_WORDS: dict[str, tuple[str, ...]] = {
    "Hardware": ("laptop", "monitor", "keyboard", "printer", "docking station"),
    "Access": ("password", "permission", "login", "account locked", "mfa token"),
    "Storage": ("mailbox quota", "shared drive", "disk space", "onedrive", "archive"),
}
CSV_PHRASES = (
    "{word} is broken",
    "need help with {word}",
    "{word} stopped working",
    "problem with my {word}",
    "urgent {word} request",
)
CSV_VAGUE_TITLES = ("please help asap", "follow up on yesterday", "question")


def environment(database_url: str, cache_dir: Path) -> Environment:
    """Return the CLI settings for a database, with the shipped mappings."""
    return {
        "OPSROUTE_DATABASE_URL": database_url,
        "OPSROUTE_MODEL_CACHE_DIR": str(cache_dir),
        "OPSROUTE_MAPPINGS_DIR": None,
    }


def invoke_cli(arguments: Sequence[str], env: Environment) -> Result:
    """Run `opsroute` with the arguments and settings, keeping stdout and stderr."""
    return CliRunner().invoke(cli, list(arguments), env=env)


def write_tickets_csv(path: Path, groups: Sequence[str] | None = None) -> Path:
    """Write an export of 25 distinctive and 3 vague tickets per group."""
    chosen = groups or list(CSV_GROUP_WORDS)
    rows = []
    for group in chosen:
        words = CSV_GROUP_WORDS[group]
        for word, phrase in itertools.islice(itertools.product(words, CSV_PHRASES), 25):
            rows.append((phrase.format(word=word), f"the {word} needs a look", group))
        for title in CSV_VAGUE_TITLES:
            rows.append((title, "", group))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for number, (title, details, group) in enumerate(rows, start=1):
            writer.writerow((f"INC{number:07d}", title, details, group))
    return path


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` across processes."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def copy_model(database_url: str, record: ModelRecord) -> None:
    """Migrate the database and store the model there as the active one."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with session_factory(engine).begin() as session:
            save_model(
                session,
                version=record.version,
                kind=record.kind,
                dataset=record.dataset,
                label_set=record.label_set,
                metrics=record.metrics,
                params=record.params,
                data_hash=record.data_hash,
                artefact=record.artefact,
                activate=True,
            )
    finally:
        engine.dispose()


@dataclass(frozen=True)
class DemoRun:
    """The session's first helpdesk demo: its JSON report and the model it trained."""

    report: dict[str, Any]
    model: ModelRecord


@dataclass(frozen=True)
class DemoDatabase:
    """A database that contains one demo replay, and the settings that use it."""

    url: str
    env: Environment
    report: dict[str, Any]

    def count_rows(self) -> tuple[int, int]:
        """Return the number of stored tickets and decisions."""
        engine = make_engine(self.url)
        try:
            with engine.connect() as connection:
                ticket_count = connection.execute(
                    select(func.count()).select_from(tickets)
                ).scalar_one()
                decision_count = connection.execute(
                    select(func.count()).select_from(decisions)
                ).scalar_one()
        finally:
            engine.dispose()
        return ticket_count, decision_count

    def open_review_keys(self) -> list[str]:
        """Return the keys of tickets with an open review item, oldest first."""
        engine = make_engine(self.url)
        try:
            with session_factory(engine)() as session:
                items = list_open_reviews(session, limit=DEMO_TICKETS)
        finally:
            engine.dispose()
        return [item.ticket_key for item in items]

    def auto_routed_key(self) -> str:
        """Return the key of one ticket the demo auto-routed."""
        engine = make_engine(self.url)
        try:
            with engine.connect() as connection:
                key = connection.execute(
                    select(tickets.c.key)
                    .join(decisions, decisions.c.ticket_id == tickets.c.id)
                    .where(decisions.c.action == "auto_route")
                    .order_by(tickets.c.key)
                    .limit(1)
                ).scalar_one()
        finally:
            engine.dispose()
        return str(key)
