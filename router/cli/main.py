"""The `opsroute` command line."""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points

import click

from router import __version__
from router.cli.connectors import connectors
from router.cli.database import database
from router.cli.demo import demo
from router.cli.mappings import mappings
from router.cli.models import evaluate, model_group, train
from router.cli.outbox import outbox
from router.cli.policy import policy
from router.cli.report import report
from router.cli.sandbox import sandbox
from router.cli.serve import serve
from router.cli.tickets import review, why


@click.group()
@click.version_option(__version__, prog_name="opsroute")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log more to stderr: -v for info, -vv for debug.",
)
def cli(verbose: int) -> None:
    """Route ITSM tickets from ServiceNow, Jira and Salesforce to resolver groups."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


cli.add_command(demo)
cli.add_command(train)
cli.add_command(evaluate)
cli.add_command(why)
cli.add_command(review)
cli.add_command(mappings)
cli.add_command(database)
cli.add_command(outbox)
cli.add_command(serve)
cli.add_command(connectors)
cli.add_command(sandbox)

# Plugins add command groups through entry points, such as `opsroute slack`.
for _entry_point in entry_points(group="opsroute.cli"):
    cli.add_command(_entry_point.load(), name=_entry_point.name)
cli.add_command(report)
cli.add_command(model_group)
cli.add_command(policy)


def main() -> None:
    """Run the command line."""
    cli()


if __name__ == "__main__":
    main()
