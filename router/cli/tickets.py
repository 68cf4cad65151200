"""`opsroute why` and `opsroute review`: decision trails and the review queue."""

from __future__ import annotations

import getpass
from typing import Any

import click

from router.cli.common import fail, open_session, print_json, settings
from router.mapping import load_mappings
from router.store.errors import (
    AmbiguousTicketError,
    ReviewNotFoundError,
    TicketNotFoundError,
)
from router.store.records import AuditEntry, DecisionRecord
from router.store.reviews import count_open_reviews, list_open_reviews, resolve_review
from router.store.service import find_ticket, latest_decision, ticket_trail


@click.command()
@click.argument("ticket")
@click.option(
    "--json", "as_json", is_flag=True, help="Print only one JSON object to stdout."
)
def why(ticket: str, as_json: bool) -> None:
    """Show how TICKET was routed: its latest decision, explanation and audit trail.

    TICKET is the system's own id (HDFS-123, INC0012345, a case number); prefix it with
    the system (jira:HDFS-123) when two systems share an id.
    """
    with open_session(settings()) as session:
        try:
            record = find_ticket(session, ref=ticket)
        except TicketNotFoundError as error:
            fail(
                f"{error} A ticket sent to opsroute serve moments ago may still be "
                "waiting in the inbox; /readyz shows whether a model is loaded."
            )
        except AmbiguousTicketError as error:
            fail(str(error))
        decision = latest_decision(session, ticket_id=record.id)
        trail = ticket_trail(session, ticket_key=record.key)
    if as_json:
        print_json(
            {
                "ticket": record.payload,
                "decision": None
                if decision is None
                else decision.to_decision().model_dump(mode="json"),
                "trail": [_entry_json(entry) for entry in trail],
            }
        )
        return
    click.echo(f"{record.key}: {record.title}")
    if decision is not None:
        click.echo(_decision_text(decision))
    click.echo("")
    click.echo("Audit trail:")
    for entry in trail:
        click.echo(
            f"  {entry.at:%Y-%m-%d %H:%M:%S} {entry.event:<16} {entry.actor:<14} "
            f"{_entry_summary(entry)}"
        )


def _decision_text(decision: DecisionRecord) -> str:
    explanation = decision.explanation
    lines = [
        f"  routed to {decision.resolver_group} ({decision.action}), confidence "
        f"{decision.confidence:.2f} against threshold {decision.threshold:.2f}",
        f"  intent {decision.intent}, urgency {decision.urgency or 'unknown'}",
        f"  model {decision.model_version}, policy {decision.policy_version}, "
        f"decided {decision.decided_at:%Y-%m-%d %H:%M:%S} UTC",
        "  candidates: "
        + ", ".join(
            f"{c['group']} {c['probability']:.2f}" for c in decision.candidates
        ),
    ]
    for label, part in (
        ("chosen", explanation.get("chosen")),
        ("runner-up", explanation.get("runner_up")),
    ):
        if not part:
            continue
        terms = ", ".join(
            f"{term} (+{weight:.3f})" for term, weight in part.get("terms", {}).items()
        )
        lines.append(
            f"  {label} {part['group']} (score {part['score']:.2f}): "
            f"{terms or 'no word features'}"
        )
    if explanation.get("intent_matches"):
        lines.append("  intent matched: " + ", ".join(explanation["intent_matches"]))
    for note in explanation.get("notes", []):
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def _entry_summary(entry: AuditEntry) -> str:
    details = entry.details
    if entry.event == "decision":
        confidence = entry.inputs.get("confidence")
        shown = "" if confidence is None else f" at {confidence:.2f}"
        return f"{details.get('action')} -> {details.get('resolver_group')}{shown}"
    if entry.event == "classification":
        return f"model {entry.versions.get('model')}"
    if entry.event == "review_resolved":
        return f"-> {details.get('resolved_group')}"
    return ", ".join(f"{k}={v}" for k, v in details.items())


def _entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "event": entry.event,
        "actor": entry.actor,
        "inputs": entry.inputs,
        "versions": entry.versions,
        "details": entry.details,
    }


@click.group()
def review() -> None:
    """Work the queue of tickets that need a person to pick the group."""


@review.command("list")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Items to show, oldest first.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print only one JSON object to stdout."
)
def list_reviews(limit: int, as_json: bool) -> None:
    """List open review items, oldest first, with the model's top candidates."""
    with open_session(settings()) as session:
        items = list_open_reviews(session, limit=limit)
        total = count_open_reviews(session)
    if as_json:
        print_json(
            {
                "open": total,
                "items": [
                    {
                        "ticket": item.ticket_key,
                        "title": item.title,
                        "suggested_group": item.suggested_group,
                        "confidence": item.confidence,
                        "candidates": item.candidates,
                        "created_at": item.created_at.isoformat(),
                    }
                    for item in items
                ],
            }
        )
        return
    if not items:
        click.echo("The review queue is empty.")
        return
    click.echo(f"{total} open review items; the {len(items)} oldest first:")
    for item in items:
        candidates = ", ".join(
            f"{c['group']} {c['probability']:.2f}" for c in item.candidates
        )
        click.echo(f"{item.ticket_key:<28} {item.confidence:.2f}  {candidates}")
        click.echo(f"    {item.title[:100]}")


@review.command("resolve")
@click.argument("ticket")
@click.argument("group")
@click.option(
    "--actor", help="Who resolved it, for the audit log (default: cli:<login>)."
)
def resolve(ticket: str, group: str, actor: str | None) -> None:
    """Settle TICKET's open review item by assigning it to GROUP."""
    core = settings()
    known = load_mappings(core.mappings_dir).taxonomy.group_names
    if group not in known:
        fail(
            f"group {group!r} is not in the taxonomy; "
            f"expected one of {', '.join(known)}."
        )
    who = actor or f"cli:{getpass.getuser()}"
    with open_session(core) as session, session.begin():
        try:
            item = resolve_review(session, ref=ticket, group=group, actor=who)
        except (
            TicketNotFoundError,
            AmbiguousTicketError,
            ReviewNotFoundError,
        ) as error:
            fail(str(error))
    changed = (
        "confirmed"
        if group == item.suggested_group
        else f"changed from {item.suggested_group}"
    )
    click.echo(f"Resolved {item.ticket_key}: {group} ({changed}), by {who}.")
