"""`opsroute sandbox`: try a webhook round trip without any vendor account."""

from __future__ import annotations

import logging
import threading

import click

from router.sandbox.run import run_sandbox


def _wait_forever() -> None:
    threading.Event().wait()


@click.command()
@click.option(
    "--keep-running",
    is_flag=True,
    help="Keep the fakes and the service running after the round trip, until Ctrl-C.",
)
def sandbox(keep_running: bool) -> None:
    """Start fake ServiceNow, Jira and Salesforce APIs and the service on 127.0.0.1.

    One signed webhook per system goes to the service, which routes the ticket
    and writes the assignment and a note back to the fake. Both are printed.
    The database and certificates are in a temporary folder, removed at the end.
    """
    logging.getLogger("router").setLevel(logging.WARNING)
    try:
        complete = run_sandbox(
            echo=click.echo,
            keep_running=keep_running,
            wait_forever=_wait_forever,
        )
    except KeyboardInterrupt:
        click.echo("Stopped.")
        return
    except TimeoutError as error:
        raise click.ClickException(f"Sandbox stopped: {error}") from None
    if not complete:
        raise click.ClickException(
            "Not every write-back arrived in time; run with -v to see the logs."
        )
