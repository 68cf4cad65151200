"""`opsroute demo`: route the bundled real tickets end to end."""

from __future__ import annotations

import click

from router.cli.common import print_json, settings
from router.datasets.catalog import DATASETS
from router.demo.run import DemoOptions, run_demo


@click.command()
@click.option(
    "--dataset",
    type=click.Choice(sorted(DATASETS)),
    default="apache-jira",
    show_default=True,
    help="Bundled dataset to train on and replay.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Replay at most this many held-out tickets.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Tickets per batch.",
)
@click.option(
    "--retrain",
    is_flag=True,
    help="Train a new model even if one for this data is stored.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print only one JSON object to stdout."
)
def demo(
    dataset: str, limit: int | None, batch_size: int, retrain: bool, as_json: bool
) -> None:
    """Train (or reuse) a model and replay held-out tickets from the three systems.

    Each held-out ticket is shaped like a ServiceNow, Jira or Salesforce record in turn,
    normalized through that system's mapping, classified, decided and stored in the
    configured database (OPSROUTE_DATABASE_URL, by default ./opsroute.db).
    """
    options = DemoOptions(
        dataset=dataset, limit=limit, batch_size=batch_size, retrain=retrain
    )
    report = run_demo(options, settings=settings())
    if as_json:
        print_json(report.as_json())
    else:
        click.echo(report.as_text())
