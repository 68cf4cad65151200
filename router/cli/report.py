"""`opsroute report` and `opsroute report drift`: routing figures and drift review."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from router.analytics.drift import DriftLimits, default_windows, review_drift
from router.analytics.html import render_html
from router.analytics.report import build_report, render_text
from router.cli.common import fail, open_session, print_json, settings

DEFAULTS = DriftLimits()


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(
            f"--since {value!r} is not a date; pass an ISO date such as 2026-11-01 "
            "or 2026-11-01T08:00:00+00:00."
        )
        raise  # unreachable, because fail raises
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        fail(f"Cannot write the report to {output}: {error.strerror}.")
    click.echo(f"Wrote the report to {output}", err=True)


@click.group(invoke_without_command=True)
@click.option(
    "--since",
    metavar="DATE",
    help="Count only tickets first decided at or after this ISO date; UTC when it "
    "has no time zone.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "html", "json"]),
    default="text",
    show_default=True,
    help="Text tables, one self-contained HTML page, or one JSON object.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the report to this file instead of stdout.",
)
@click.pass_context
def report(
    context: click.Context,
    since: str | None,
    output_format: str,
    output: Path | None,
) -> None:
    """Report first-touch accuracy, transfers, time to owner, SLA and escalations.

    The figures come from the stored decisions and the audit log. A figure that no
    stored event can measure shows n/a (null in JSON).
    """
    if context.invoked_subcommand is not None:
        return
    start = _parse_since(since)
    with open_session(settings()) as session:
        data = build_report(session, since=start)
    if output_format == "json":
        text = json.dumps(data, indent=2, default=str)
    elif output_format == "html":
        text = render_html(data)
    else:
        text = render_text(data)
    _write(text, output)


@report.command()
@click.option(
    "--recent-days",
    type=click.IntRange(min=1),
    default=28,
    show_default=True,
    help="Length of the recent window, ending at the newest decision, in days.",
)
@click.option(
    "--reference-days",
    type=click.IntRange(min=1),
    default=56,
    show_default=True,
    help="Length of the reference window just before the recent one, in days.",
)
@click.option(
    "--label-psi",
    type=click.FloatRange(min=0.0),
    default=DEFAULTS.label_psi,
    show_default=True,
    help="Limit of the PSI of the predicted groups' mix.",
)
@click.option(
    "--vocabulary-psi",
    type=click.FloatRange(min=0.0),
    default=DEFAULTS.vocabulary_psi,
    show_default=True,
    help="Limit of the PSI of the title vocabulary.",
)
@click.option(
    "--confidence-psi",
    type=click.FloatRange(min=0.0),
    default=DEFAULTS.confidence_psi,
    show_default=True,
    help="Limit of the PSI of the confidence.",
)
@click.option(
    "--precision-drop",
    type=click.FloatRange(min=0.0),
    default=DEFAULTS.precision_drop,
    show_default=True,
    help="Largest allowed fall of a group's auto-route precision (share).",
)
@click.option(
    "--transfer-rise",
    type=click.FloatRange(min=0.0),
    default=DEFAULTS.transfer_rate_rise,
    show_default=True,
    help="Largest allowed rise of the share of tickets transferred.",
)
@click.option(
    "--min-group-tickets",
    type=click.IntRange(min=1),
    default=DEFAULTS.min_group_tickets,
    show_default=True,
    help="Compare a group's precision only with this many tickets in both.",
)
@click.option(
    "--fail-on-drift", is_flag=True, help="Exit with status 1 when anything drifted."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print only one JSON object to stdout."
)
def drift(
    recent_days: int,
    reference_days: int,
    label_psi: float,
    vocabulary_psi: float,
    confidence_psi: float,
    precision_drop: float,
    transfer_rise: float,
    min_group_tickets: int,
    fail_on_drift: bool,
    as_json: bool,
) -> None:
    """Compare the recent window of decisions with a reference window.

    Exits 0 once the review is made, also when something drifted, unless
    --fail-on-drift is given.
    """
    limits = DriftLimits(
        label_psi=label_psi,
        vocabulary_psi=vocabulary_psi,
        confidence_psi=confidence_psi,
        precision_drop=precision_drop,
        transfer_rate_rise=transfer_rise,
        min_group_tickets=min_group_tickets,
    )
    with open_session(settings()) as session:
        windows = default_windows(
            session, recent_days=recent_days, reference_days=reference_days
        )
        if windows is None:
            fail(
                "No decisions are stored yet; run opsroute demo or opsroute serve "
                "first."
            )
            return
        result = review_drift(session, windows=windows, limits=limits)
    if as_json:
        print_json(result.as_json())
    else:
        click.echo(result.as_text())
    if fail_on_drift and result.drifted:
        sys.exit(1)
