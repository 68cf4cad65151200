"""`opsroute sandbox`: the three fakes and the service on 127.0.0.1, one round trip.

The sandbox starts fake ServiceNow, Jira and Salesforce APIs seeded with the
taxonomy's groups and one ticket each, and `opsroute serve` in this process on a
SQLite file in a temporary folder, with generated secrets. It then sends one
signed webhook per system and waits until each ticket's assignment and note are
written back to its fake, and prints them.
"""

from __future__ import annotations

import logging
import secrets
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

from pydantic import SecretStr

from router.intake.plugin import Connector
from router.mapping import MappingSet, load_mappings
from router.sandbox.jira import FakeJira
from router.sandbox.salesforce import FakeSalesforce
from router.sandbox.servicenow import FakeServiceNow
from router.sandbox.webhooks import SANDBOX_ORG_ID, RoundTrip, send_webhooks

logger = logging.getLogger(__name__)

# Seconds the fakes live at most, so a forgotten sandbox stops by itself.
FAKE_LIFETIME_SECONDS = 3600.0
# Seconds to wait for the service to be ready (it trains a model first).
READY_TIMEOUT_SECONDS = 300.0
# Seconds to wait for the three write-backs after the webhooks.
ROUND_TRIP_TIMEOUT_SECONDS = 60.0
SANDBOX_DATASET = "helpdesk"


@dataclass
class Fakes:
    """The running fake vendor APIs of one sandbox."""

    servicenow: FakeServiceNow
    jira: FakeJira
    salesforce: FakeSalesforce

    def stop(self) -> None:
        """Stop the three fakes."""
        for fake in (self.servicenow, self.jira, self.salesforce):
            fake.stop()


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sandbox_mappings() -> MappingSet:
    """Return the shipped mappings with threshold 0, so every decision auto-routes.

    The sandbox shows a write-back for every ticket, whatever the model's
    confidence; a real deployment keeps the shipped thresholds.
    """
    mappings = load_mappings()
    thresholds = mappings.thresholds.model_copy(update={"default": 0.0, "groups": {}})
    return replace(mappings, thresholds=thresholds)


def start_fakes(folder: Path, mappings: MappingSet) -> Fakes:
    """Start the three fakes with the taxonomy's groups and queues."""
    servicenow = FakeServiceNow(
        password=secrets.token_urlsafe(12), lifetime_seconds=FAKE_LIFETIME_SECONDS
    ).start()
    jira = FakeJira(
        token=secrets.token_urlsafe(12), lifetime_seconds=FAKE_LIFETIME_SECONDS
    ).start()
    salesforce = FakeSalesforce(
        certificate_dir=folder,
        session_id=f"00D!{secrets.token_urlsafe(16)}",
        lifetime_seconds=FAKE_LIFETIME_SECONDS,
    ).start()
    for number, group in enumerate(mappings.taxonomy.resolver_groups, start=1):
        servicenow.add_group(group.targets.servicenow or group.name)
        salesforce.add_queue(
            group.targets.salesforce or group.name, f"00G5g{number:010d}AAA"
        )
    # The triage group and queue, where agents send tickets back for routing.
    servicenow_triage = mappings.systems["servicenow"].triage_group
    group_names = {row["name"] for row in servicenow.tables["sys_user_group"].values()}
    if servicenow_triage is not None and servicenow_triage not in group_names:
        servicenow.add_group(servicenow_triage)
    salesforce_triage = mappings.systems["salesforce"].triage_group
    if salesforce_triage is not None and salesforce_triage not in salesforce.queues:
        salesforce.add_queue(salesforce_triage, "00G5g0000000000AAA")
    return Fakes(servicenow=servicenow, jira=jira, salesforce=salesforce)


def build_connectors(
    fakes: Fakes, mappings: MappingSet, *, webhook_secret: str
) -> dict[tuple[str, str], Connector]:
    """Build the real connectors, pointed at the fakes."""
    from connectors.jira import JiraConnector
    from connectors.salesforce import SalesforceConnector
    from connectors.servicenow import ServiceNowConnector
    from connectors.settings import JiraSettings, SalesforceSettings, ServiceNowSettings

    secret = SecretStr(webhook_secret)
    servicenow = ServiceNowConnector(
        mappings=mappings,
        settings=ServiceNowSettings(
            webhook_secret=secret,
            instance=fakes.servicenow.url,
            user=fakes.servicenow.user,
            password=SecretStr(fakes.servicenow.password),
        ),
    )
    jira = JiraConnector(
        mappings=mappings,
        settings=JiraSettings(
            webhook_secret=secret,
            url=fakes.jira.url,
            user=fakes.jira.user,
            api_token=SecretStr(fakes.jira.token),
        ),
    )
    salesforce = SalesforceConnector(
        mappings=mappings,
        settings=SalesforceSettings(
            org_ids=SANDBOX_ORG_ID,
            instance_url=fakes.salesforce.url,
            session_id=SecretStr(fakes.salesforce.session_id),
        ),
        http_session=fakes.salesforce.client_session(),
    )
    # The connectors declare `system` as a class variable, which mypy does not
    # match to the protocol's attribute.
    return {
        ("servicenow", "default"): cast(Connector, servicenow),
        ("jira", "default"): cast(Connector, jira),
        ("salesforce", "default"): cast(Connector, salesforce),
    }


@contextmanager
def running_service(
    folder: Path,
    connectors: dict[tuple[str, str], Connector],
    mappings: MappingSet,
    *,
    database_url: str | None = None,
) -> Iterator[str]:
    """Serve the app on a free port in a thread; yield its base URL.

    The store is a SQLite file in `folder` unless `database_url` names another.
    """
    import uvicorn

    from router.service.app import create_app
    from router.service.runtime import ServiceRuntime
    from router.service.settings import ServiceSettings

    port = free_port()
    settings = ServiceSettings(
        database_url=database_url or f"sqlite:///{folder / 'opsroute.db'}",
        host="127.0.0.1",
        port=port,
        model_cache_dir=folder / "cache",
        model_dataset=SANDBOX_DATASET,
    )
    runtime = ServiceRuntime(settings, connectors=connectors, mappings=mappings)
    config = uvicorn.Config(
        create_app(runtime=runtime),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="sandbox-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def wait_until_ready(base_url: str, *, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Wait until /readyz returns 200.

    Raises:
        TimeoutError: the service was not ready in time. The message contains
            the last /readyz response.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as error:
            last = error.read().decode(errors="replace")[:300]
        except OSError as error:
            last = str(error)
        time.sleep(0.5)
    raise TimeoutError(f"the service was not ready after {timeout:g} s: {last}")


def read_write_backs(fakes: Fakes, trips: list[RoundTrip]) -> None:
    """Fill in each round trip with the group and note found in its fake."""
    servicenow, jira, salesforce = trips
    for record in fakes.servicenow.tables["incident"].values():
        notes = fakes.servicenow.journal(record["sys_id"])
        if notes:
            group_id = record.get("assignment_group")
            group = fakes.servicenow.tables["sys_user_group"].get(str(group_id), {})
            servicenow.group = group.get("name") or str(group_id)
            servicenow.note = notes[-1]
    for issue_id, comments in fakes.jira.comments.items():
        if comments:
            fields = fakes.jira.issues[issue_id]["fields"]
            names = [item["name"] for item in fields.get("components") or []]
            jira.group = ", ".join(names + list(fields.get("labels") or []))
            jira.note = str(comments[-1]["body"])
    queue_names = {queue_id: name for name, queue_id in fakes.salesforce.queues.items()}
    for comment in fakes.salesforce.case_comments:
        case = fakes.salesforce.cases.get(comment["ParentId"], {})
        salesforce.group = queue_names.get(
            str(case.get("OwnerId")), case.get("OwnerId")
        )
        salesforce.note = str(comment["CommentBody"])


def wait_for_write_backs(
    fakes: Fakes, trips: list[RoundTrip], *, timeout: float = ROUND_TRIP_TIMEOUT_SECONDS
) -> bool:
    """Wait until every accepted webhook's note is written; return whether all were."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        read_write_backs(fakes, trips)
        if all(trip.note for trip in trips if trip.webhook_status == 200):
            return True
        time.sleep(0.2)
    return False


def run_sandbox(
    *,
    echo: Callable[[str], None],
    keep_running: bool,
    wait_forever: Callable[[], None],
) -> bool:
    """Run the round trip and print it; return whether every write-back arrived."""
    secret = secrets.token_urlsafe(24)
    mappings = sandbox_mappings()
    with tempfile.TemporaryDirectory(prefix="opsroute-sandbox-") as name:
        folder = Path(name)
        fakes = start_fakes(folder, mappings)
        try:
            echo(
                f"Fake ServiceNow {fakes.servicenow.url}, Jira {fakes.jira.url}, "
                f"Salesforce {fakes.salesforce.url}"
            )
            connectors = build_connectors(fakes, mappings, webhook_secret=secret)
            with running_service(folder, connectors, mappings) as base_url:
                echo(
                    f"opsroute serve on {base_url} with SQLite in {folder}; training a "
                    "small model on the bundled helpdesk data set first..."
                )
                wait_until_ready(base_url)
                trips = send_webhooks(base_url, fakes, secret)
                complete = wait_for_write_backs(fakes, trips)
                print_round_trips(trips, echo=echo)
                if keep_running:
                    echo(f"Still serving on {base_url}; press Ctrl-C to stop.")
                    wait_forever()
        finally:
            fakes.stop()
    return complete


def print_round_trips(trips: list[RoundTrip], *, echo: Callable[[str], None]) -> None:
    """Print each system's webhook status, written group and note."""
    for trip in trips:
        echo(
            f"{trip.system} {trip.ticket}: webhook answered HTTP {trip.webhook_status}"
        )
        if trip.note is None:
            echo("  nothing written back in time")
            continue
        echo(f"  assignment written: {trip.group}")
        first_line = trip.note.splitlines()[0] if trip.note else ""
        echo(f"  note written: {first_line}")
