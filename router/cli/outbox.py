"""`opsroute outbox`: list the actions waiting for delivery and re-queue dead ones."""

from __future__ import annotations

import getpass
from typing import Any

import click

from router.cli.common import fail, open_session, print_json, settings
from router.store.errors import ActionNotDeadError, ActionNotFoundError
from router.store.outbox import list_actions, retry_action
from router.store.records import ActionStatus, OutboxAction

# Characters of an action's last error shown in the table; --json shows all of it.
ERROR_WIDTH = 60


@click.group()
def outbox() -> None:
    """Inspect the write-backs, tasks and notifications waiting for delivery."""


@outbox.command("list")
@click.option(
    "--status",
    type=click.Choice([status.value for status in ActionStatus]),
    help="Show only actions with this status, such as dead.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Actions to show, newest first.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print only one JSON object to stdout."
)
def list_outbox(status: str | None, limit: int, as_json: bool) -> None:
    """List outbox actions, newest first, with their attempts and last error."""
    with open_session(settings()) as session:
        actions = list_actions(session, status=status, limit=limit)
    if as_json:
        print_json({"actions": [_action_json(action) for action in actions]})
        return
    if not actions:
        of_status = "" if status is None else f" {status}"
        click.echo(f"The outbox has no{of_status} actions.")
        return
    click.echo(
        f"{'ID':>6}  {'STATUS':<9}  {'KIND':<12}  {'SYSTEM':<18}  {'TICKET':<28}  "
        f"{'TRIES':>5}  {'NEXT ATTEMPT (UTC)':<19}  LAST ERROR"
    )
    for action in actions:
        system = f"{action.system}/{action.instance}"
        line = (
            f"{action.id:>6}  {action.status:<9}  {action.kind:<12}  {system:<18}  "
            f"{action.ticket_key:<28}  {action.attempts:>5}  "
            f"{_next_attempt(action):<19}  {_short_error(action.last_error)}"
        )
        click.echo(line.rstrip())


@outbox.command("retry")
@click.argument("action_id", metavar="ID", type=int)
@click.option(
    "--actor", help="Who re-queued it, for the audit log (default: cli:<login>)."
)
def retry(action_id: int, actor: str | None) -> None:
    """Queue the dead action ID for delivery again, starting over at attempt 0."""
    actor_name = actor or f"cli:{getpass.getuser()}"
    with open_session(settings()) as session, session.begin():
        try:
            action = retry_action(session, action_id=action_id, actor=actor_name)
        except (ActionNotFoundError, ActionNotDeadError) as error:
            fail(str(error))
    click.echo(
        f"Re-queued outbox action {action.id} ({action.kind} for "
        f"{action.ticket_key}), by {actor_name}; it is due now."
    )
    if action.last_error:
        click.echo(f"Its last error was: {_short_error(action.last_error)}")


def _next_attempt(action: OutboxAction) -> str:
    # Only a pending action has a next attempt; an in_flight one is being delivered.
    if action.status != ActionStatus.PENDING:
        return "-"
    return f"{action.next_attempt_at:%Y-%m-%d %H:%M:%S}"


def _short_error(error: str | None) -> str:
    if not error:
        return ""
    line = " ".join(error.split())
    if len(line) <= ERROR_WIDTH:
        return line
    return line[: ERROR_WIDTH - 3] + "..."


def _action_json(action: OutboxAction) -> dict[str, Any]:
    return {
        "id": action.id,
        "status": action.status,
        "kind": action.kind,
        "system": action.system,
        "instance": action.instance,
        "ticket": action.ticket_key,
        "record_id": action.record_id,
        "marker": action.marker,
        "decision_id": action.decision_id,
        "attempts": action.attempts,
        "next_attempt_at": action.next_attempt_at.isoformat(),
        "claimed_by": action.claimed_by,
        "last_error": action.last_error,
        "created_at": action.created_at.isoformat(),
        "updated_at": action.updated_at.isoformat(),
        "done_at": None if action.done_at is None else action.done_at.isoformat(),
    }
