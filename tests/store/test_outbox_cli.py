"""`opsroute outbox list` and `outbox retry`, run on a database of the test's own."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from router.cli.outbox import outbox
from router.store.db import session_factory
from router.store.outbox import (
    claim_due_actions,
    enqueue_actions,
    get_action,
    park_action_dead,
)
from router.store.service import ticket_trail

from .queue_support import build_action

OutboxRunner = Callable[[Sequence[str]], Result]

NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
LONG_ERROR = "HTTP 400 from Jira: " + "field customfield_10010 is not on screen " * 5


@pytest.fixture
def run_outbox(database_url: str, migrated_engine: Engine) -> OutboxRunner:
    """Return a function that runs `outbox` subcommands on the migrated database."""
    env: dict[str, str | None] = {
        "OPSROUTE_DATABASE_URL": database_url,
    }

    def run(arguments: Sequence[str]) -> Result:
        return CliRunner().invoke(outbox, list(arguments), env=env)

    return run


@pytest.fixture
def stored_ids(migrated_engine: Engine) -> tuple[int, int]:
    """Store a dead and a pending action and return their ids."""
    with session_factory(migrated_engine).begin() as session:
        dead_id, pending_id = enqueue_actions(
            session,
            actions=[
                build_action(marker="opsroute-dead", ticket_key="jira:HDFS-1"),
                build_action(marker="opsroute-pending", ticket_key="jira:HDFS-2"),
            ],
            now=NOW,
        )
        claim_due_actions(
            session, limit=1, now=NOW, worker="replica-a", lease_seconds=30
        )
        park_action_dead(session, action_id=dead_id, error=LONG_ERROR)
    return dead_id, pending_id


def test_list_on_empty_outbox_says_so(run_outbox: OutboxRunner) -> None:
    result = run_outbox(["list"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "The outbox has no actions.\n"


def test_list_shows_one_line_per_action(
    run_outbox: OutboxRunner, stored_ids: tuple[int, int]
) -> None:
    dead_id, pending_id = stored_ids

    result = run_outbox(["list"])
    header, newest, oldest = result.stdout.splitlines()

    assert result.exit_code == 0, result.output
    assert header.split()[:4] == ["ID", "STATUS", "KIND", "SYSTEM"]
    assert newest.split()[:6] == [
        str(pending_id),
        "pending",
        "write_back",
        "jira/default",
        "jira:HDFS-2",
        "0",
    ]
    assert oldest.split()[:6] == [
        str(dead_id),
        "dead",
        "write_back",
        "jira/default",
        "jira:HDFS-1",
        "1",
    ]


def test_list_truncates_long_error(
    run_outbox: OutboxRunner, stored_ids: tuple[int, int]
) -> None:
    result = run_outbox(["list", "--status", "dead"])
    [line] = result.stdout.splitlines()[1:]

    assert "HTTP 400 from Jira: field customfield_10010" in line
    assert line.endswith("...")
    assert LONG_ERROR.strip() not in line


def test_list_json_prints_one_object(
    run_outbox: OutboxRunner, stored_ids: tuple[int, int]
) -> None:
    dead_id, _ = stored_ids

    result = run_outbox(["list", "--status", "dead", "--json"])
    listed = json.loads(result.stdout)

    assert result.exit_code == 0, result.output
    assert [action["id"] for action in listed["actions"]] == [dead_id]
    assert listed["actions"][0]["last_error"] == LONG_ERROR
    assert listed["actions"][0]["status"] == "dead"


def test_list_rejects_unknown_status(run_outbox: OutboxRunner) -> None:
    result = run_outbox(["list", "--status", "stuck"])

    assert result.exit_code == 2
    assert "'stuck' is not one of" in result.output


def test_retry_requeues_dead_action(
    run_outbox: OutboxRunner, stored_ids: tuple[int, int], migrated_engine: Engine
) -> None:
    dead_id, _ = stored_ids

    result = run_outbox(["retry", str(dead_id), "--actor", "cli:alice"])

    with session_factory(migrated_engine)() as session:
        action = get_action(session, action_id=dead_id)
        [entry] = ticket_trail(session, ticket_key="jira:HDFS-1")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"Re-queued outbox action {dead_id} (write_back for jira:HDFS-1), by "
        "cli:alice; it is due now.\n"
    )
    assert "Its last error was: HTTP 400 from Jira" in result.stdout
    assert action.status == "pending"
    assert entry.actor == "cli:alice"


def test_retry_unknown_id_exits_with_message(
    run_outbox: OutboxRunner, stored_ids: tuple[int, int]
) -> None:
    result = run_outbox(["retry", "999"])

    assert result.exit_code == 1
    assert "Outbox action 999 not found" in result.stderr


def test_retry_pending_action_exits_with_message(
    run_outbox: OutboxRunner, stored_ids: tuple[int, int]
) -> None:
    _, pending_id = stored_ids

    result = run_outbox(["retry", str(pending_id)])

    assert result.exit_code == 1
    assert f"Outbox action {pending_id} is pending, not dead" in result.stderr
