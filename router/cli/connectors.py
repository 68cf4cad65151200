"""`opsroute connectors`: poll state, go-live switches, backfill and checks.

A connector is named `system` for its default instance or `system/instance`,
such as `jira/eu`. Pause, resume and observe-only are stored in the database,
so every replica of `opsroute serve` reads them at its next poll or batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import click

from router.cli.common import fail, open_session, print_json, settings
from router.intake.plugin import (
    DEFAULT_INSTANCE,
    Connector,
    PollError,
    PollingConnector,
    load_connectors,
)
from router.mapping import load_mappings
from router.service.polling import ConnectorPoller, parse_poll_start
from router.store import db
from router.store.connector_state import (
    ConnectorState,
    ensure_connector_state,
    get_connector_state,
    update_connector_state,
)

# Characters of a connector's last error shown in the table; --json shows all.
ERROR_WIDTH = 60


@click.group()
def connectors() -> None:
    """Show and control the ServiceNow, Jira and Salesforce connectors."""


def _configured() -> dict[str, Connector]:
    core = settings()
    mappings = load_mappings(core.mappings_dir)
    loaded = load_connectors(core, mappings=mappings)
    return {
        f"{system}/{instance}": connector
        for (system, instance), connector in loaded.items()
    }


def _find(name: str) -> PollingConnector:
    system, _, instance = name.partition("/")
    full = f"{system}/{instance or DEFAULT_INSTANCE}"
    available = _configured()
    connector = available.get(full)
    if connector is None:
        fail(
            f"No connector named {name!r}; use one of "
            f"{', '.join(sorted(available)) or '(none installed)'}."
        )
    if not isinstance(connector, PollingConnector):
        fail(f"Connector {full} cannot poll or be checked.")
    return connector  # type: ignore[return-value]


def _ensure(session: Any, connector: PollingConnector) -> ConnectorState:
    start = parse_poll_start(str(connector.settings.poll_start), now=datetime.now(UTC))
    return ensure_connector_state(
        session,
        system=connector.system,
        instance=connector.instance,
        watermark=start,
        observe_only=bool(connector.settings.observe_only),
    )


@connectors.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print only one JSON object.")
def status(as_json: bool) -> None:
    """List each connector: polling, pause, observe-only, health and watermark."""
    available = _configured()
    with open_session(settings()) as session:
        states = {
            name: get_connector_state(
                session, system=name.split("/")[0], instance=name.split("/")[1]
            )
            for name in available
        }
    rows = [
        _status_row(name, available[name], states[name]) for name in sorted(available)
    ]
    if as_json:
        print_json({"connectors": rows})
        return
    if not rows:
        click.echo(
            "No connector is installed; reinstall the package (pip install -e .)."
        )
        return
    click.echo(
        f"{'NAME':<22}  {'POLL':<4}  {'PAUSED':<6}  {'OBSERVE':<7}  {'HEALTH':<10}  "
        f"{'WATERMARK (UTC)':<19}  LAST ERROR"
    )
    for row in rows:
        click.echo(
            f"{row['name']:<22}  {_yes(row['poll']):<4}  {_yes(row['paused']):<6}  "
            f"{_yes(row['observe_only']):<7}  {row['health']:<10}  "
            f"{(row['watermark'] or '-')[:19]:<19}  "
            f"{_short(row['last_error'])}"
        )


def _status_row(
    name: str, connector: Connector, state: ConnectorState | None
) -> dict[str, Any]:
    connector_settings = getattr(connector, "settings", None)
    observe = bool(getattr(connector_settings, "observe_only", False))
    if state is None:
        health = "not polled"
    else:
        health = "healthy" if state.healthy else "unhealthy"
    return {
        "name": name,
        "poll": bool(getattr(connector_settings, "poll", False)),
        "paused": bool(state and state.paused),
        "observe_only": observe or bool(state and state.observe_only),
        "health": health,
        "watermark": state.watermark.isoformat(sep=" ")
        if state and state.watermark
        else None,
        "last_error": state.last_error if state else None,
        "retry_at": state.retry_at.isoformat() if state and state.retry_at else None,
        "missing_settings": connector.missing_settings(),
    }


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _short(text: str | None) -> str:
    if not text:
        return "-"
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 3] + "..."


def _set_switch(name: str, **values: Any) -> ConnectorState:
    connector = _find(name)
    with open_session(settings()) as session, session.begin():
        _ensure(session, connector)
        update_connector_state(
            session, system=connector.system, instance=connector.instance, **values
        )
        state = get_connector_state(
            session, system=connector.system, instance=connector.instance
        )
    if state is None:
        fail(f"The state of {name} was not stored; check the database.")
        raise AssertionError("fail() raises")
    return state


@connectors.command("pause")
@click.argument("name")
def pause(name: str) -> None:
    """Stop polling connector NAME until `resume`; webhooks are still stored."""
    state = _set_switch(name, paused=True)
    click.echo(f"Paused {state.name}: its polls are skipped until you resume it.")


@connectors.command("resume")
@click.argument("name")
def resume(name: str) -> None:
    """Poll connector NAME again, at once, from its stored watermark."""
    state = _set_switch(name, paused=False, retry_at=None)
    watermark = state.watermark.isoformat(sep=" ") if state.watermark else "now"
    click.echo(f"Resumed {state.name}: the next poll reads changes since {watermark}.")


@connectors.command("observe")
@click.argument("name")
@click.option("--off", is_flag=True, help="Go live: queue write-backs again.")
def observe(name: str, off: bool) -> None:
    """Decide and record for connector NAME, but write nothing back (or --off)."""
    state = _set_switch(name, observe_only=not off)
    if off:
        click.echo(f"{state.name} is live: new decisions queue write-backs.")
    else:
        click.echo(
            f"{state.name} is observe-only: decisions are recorded, nothing is written."
        )


@connectors.command("backfill")
@click.argument("name")
@click.option(
    "--since",
    required=True,
    help="Read records changed since this UTC date or time, such as 2026-11-01.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Maximum number of records to read; all by default.",
)
def backfill(name: str, since: str, limit: int | None) -> None:
    """Store the records of NAME changed since --since, for the service to route.

    The regular poll's watermark is left alone. Records already routed are
    skipped by the same rules as updates.
    """
    connector = _find(name)
    try:
        start = parse_poll_start(since, now=datetime.now(UTC))
    except ValueError as error:
        fail(f"--since: {error}")
    core = settings()
    engine = db.make_engine(core.database_url)
    try:
        db.upgrade(engine)
        poller = ConnectorPoller(session_factory=db.session_factory(engine))
        outcome = poller.backfill(connector, since=start, limit=limit)
    except PollError as error:
        fail(f"Backfill of {name} stopped: {error}")
    finally:
        engine.dispose()
    click.echo(
        f"Read {outcome.read} records of {outcome.connector} changed since "
        f"{start.isoformat(sep=' ')}: stored {outcome.stored}, "
        f"{outcome.duplicates} already stored. `opsroute serve` routes them."
    )


@connectors.command("check")
@click.argument("name", required=False)
def check(name: str | None) -> None:
    """Try the credentials and permissions of NAME, or of every connector."""
    if name is not None:
        chosen: Mapping[str, Any] = {name: _find(name)}
    else:
        chosen = {
            key: connector
            for key, connector in sorted(_configured().items())
            if isinstance(connector, PollingConnector)
        }
    failed = 0
    for key, connector in chosen.items():
        click.echo(f"{key}:")
        for result in connector.check():
            mark = "ok    " if result.ok else "FAILED"
            click.echo(f"  {mark} {result.name}: {result.message}")
            failed += 0 if result.ok else 1
    if failed:
        fail(
            f"{failed} check(s) failed; fix the settings named above, then run "
            "the check again."
        )
