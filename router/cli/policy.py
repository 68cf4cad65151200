"""`opsroute policy`: try the routing policies on a ticket, or on stored tickets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from router.cli.common import open_session, print_json, settings
from router.mapping import MappingError, MappingSet, load_mappings
from router.policy.diff import diff_decisions
from router.policy.facts import ModelOutput
from router.policy.preview import PolicyPreview, preview_ticket
from router.schemas import Ticket


@click.group("policy")
def policy() -> None:
    """Try the policies under mappings/policies/ before deploying them."""


@policy.command("test")
@click.argument(
    "ticket_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="TICKET_FILE",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object only.")
@click.option(
    "--now",
    "now_text",
    metavar="DATETIME",
    help="Time for date conditions, ISO 8601 (UTC when no offset is given); "
    "defaults to the ticket's created_at.",
)
@click.option(
    "--group",
    help="Model output to assume: the predicted resolver group.",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0.0, 1.0),
    default=1.0,
    show_default=True,
    help="Model output to assume with --group: its confidence.",
)
@click.option(
    "--mappings",
    "mappings_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Mapping folder; defaults to OPSROUTE_MAPPINGS_DIR, else the shipped one.",
)
def test_policy(
    ticket_file: Path,
    as_json: bool,
    now_text: str | None,
    group: str | None,
    confidence: float,
    mappings_dir: Path | None,
) -> None:
    """Show which rules fire for the ticket in TICKET_FILE, and why.

    TICKET_FILE contains a canonical ticket as JSON (see mappings/examples/) with its
    `context` filled in, so that no enricher is called. Nothing is stored or sent.
    """
    mapping_set = _load(mappings_dir)
    ticket = _read_ticket(ticket_file)
    now = _moment(now_text, ticket)
    model = ModelOutput(group=group, confidence=confidence) if group else None
    result = preview_ticket(ticket, mappings=mapping_set, now=now, model=model)
    if as_json:
        print_json(result.as_json())
        return
    _print_text(result)


@policy.command("diff")
@click.option(
    "--since",
    "since_text",
    metavar="DATE",
    help="Replay decisions made since this ISO 8601 date or time; default 7 days ago.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Maximum number of tickets to replay, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object only.")
@click.option(
    "--mappings",
    "mappings_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Mapping folder to try; defaults to OPSROUTE_MAPPINGS_DIR, else the "
    "shipped one.",
)
def diff_policy(
    since_text: str | None, limit: int, as_json: bool, mappings_dir: Path | None
) -> None:
    """List the stored decisions that the mappings and policies on disk would change.

    Each stored ticket is replayed with its stored context and the model output
    recorded with its decision, so no enricher or model is called and nothing is
    written.
    """
    mapping_set = _load(mappings_dir)
    since = (
        _parse_moment(since_text, option="--since")
        if since_text
        else datetime.now(UTC) - timedelta(days=7)
    )
    try:
        with open_session(settings(), migrate=False) as session:
            summary = diff_decisions(
                session, mappings=mapping_set, since=since, limit=limit
            )
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"cannot read the stored decisions: {type(exc).__name__}; check "
            "OPSROUTE_DATABASE_URL and run `opsroute db upgrade`"
        ) from None
    if as_json:
        print_json(
            {
                "since": since.isoformat(),
                "replayed": summary.replayed,
                "changed": [change.as_json() for change in summary.changed],
            }
        )
        return
    click.echo(
        f"Replayed {summary.replayed} tickets decided since {since.isoformat()}; "
        f"{len(summary.changed)} decisions would change."
    )
    for change in summary.changed:
        click.echo(f"{change.ticket_key} (decided {change.decided_at.isoformat()}):")
        for name, (old, new) in change.changes.items():
            click.echo(f"  {name}: {old!r} -> {new!r}")


def _load(directory: Path | None) -> MappingSet:
    try:
        return load_mappings(directory)
    except MappingError as exc:
        lines = "\n".join(str(problem) for problem in exc.problems)
        raise click.ClickException(
            f"the mapping files have {len(exc.problems)} problem(s); fix them "
            f"first (opsroute mappings validate):\n{lines}"
        ) from None


def _read_ticket(path: Path) -> Ticket:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise click.ClickException(
            f"{path}: file not found; pass a ticket JSON file such as "
            "mappings/examples/billing-dispute.json"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.ClickException(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    try:
        return Ticket.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: "
            f"{error['msg']}"
            for error in exc.errors()
        )
        raise click.ClickException(
            f"{path}: not a canonical ticket: {problems}"
        ) from None


def _moment(text: str | None, ticket: Ticket) -> datetime:
    if text is None:
        if ticket.created_at is None:
            raise click.ClickException(
                "the ticket has no created_at; pass --now, for example "
                "--now 2026-03-02T09:00:00Z"
            )
        return ticket.created_at
    return _parse_moment(text, option="--now")


def _parse_moment(text: str, *, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.ClickException(
            f"{option} {text!r} is not an ISO 8601 date or time; use, for example, "
            "2026-03-02T09:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _print_text(result: PolicyPreview) -> None:
    outcome = result.outcome
    click.echo(f"Ticket {result.ticket_key} evaluated at {result.now.isoformat()}")
    click.echo(f"Action: {result.action.value}, route to: {result.route_to or '-'}")
    click.echo("Rules fired:" if outcome.rules_fired else "Rules fired: none")
    for note in result.notes:
        click.echo(f"  {note}")
    for task in outcome.tasks:
        click.echo(f"Task {task.type}: {task.title} (assignee {task.assignee or '-'})")
    for notification in outcome.notifications:
        click.echo(f"Notify {notification.target}: {notification.reason}")
    click.echo(f"Escalation: {outcome.escalation or 'none'}")
