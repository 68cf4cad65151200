"""Measure how fast the Slack app acknowledges button clicks, with a slow ITSM.

Signed Reassign clicks are sent to `/slack/events` of the Slack app on uvicorn,
twice in one run: once while the fake ServiceNow Table API responds at once, and
once while it responds to each write after --delay seconds (2 by default). In both
runs the outbox dispatcher delivers the queued write-backs to that fake meanwhile,
so the slow ITSM is busy during the clicks. The figures are the times from
sending a click to receiving Slack's acknowledgement (HTTP 200), as p50, p99 and
max. Next to them: the write-backs the fake had received when the last click was
acknowledged, and the seconds from then until the outbox was empty (at most
--drain-timeout). The first --warmup clicks of each run are sent but not counted.

Each run uses a new SQLite file. The fake Slack Web API, the fake ServiceNow, the
app and the client all run in this process on the same machine and share its
cores, so the figures are an upper bound for the app alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# The Slack test helpers are imported from tests/chatops/, as the tests do.
TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS / "chatops"))

from pydantic import SecretStr  # noqa: E402
from slack_support import (  # noqa: E402
    BOT_TOKEN,
    RESPONDER,
    ROUTED_TICKET,
    SIGNING_SECRET,
    SlackAppServer,
    store_tickets,
    write_mapping_files,
)
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from chatops.app import ChatopsApp, SlackEventsHandler  # noqa: E402
from chatops.messages import ACTION_REASSIGN  # noqa: E402
from chatops.settings import SlackSettings  # noqa: E402
from connectors.servicenow import ServiceNowConnector  # noqa: E402
from connectors.settings import ServiceNowSettings  # noqa: E402
from router.mapping import load_mappings  # noqa: E402
from router.sandbox.server import FakeResponse, RecordedCall  # noqa: E402
from router.sandbox.servicenow import FakeServiceNow  # noqa: E402
from router.sandbox.slack import FakeSlack  # noqa: E402
from router.service.dispatcher import BackoffPolicy, OutboxDispatcher  # noqa: E402
from router.store.db import make_engine, session_factory, upgrade  # noqa: E402
from router.store.outbox import count_actions  # noqa: E402

SYS_ID = "4f1c2e3d5a6b7c8d9e0f1a2b3c4d5e6f"
# Each click moves the ticket to the other group, so every click changes something.
GROUPS = ("HIVE", "HBASE")
FAKE_LIFETIME_SECONDS = 600.0


@dataclass
class Figures:
    """The acknowledgement times of one run, in milliseconds."""

    itsm_delay_seconds: float
    clicks: int
    concurrency: int
    ack_p50_ms: float
    ack_p99_ms: float
    ack_max_ms: float
    non_200: int
    write_backs_during_clicks: int
    drain_seconds: float | None


class DelayedServiceNow(FakeServiceNow):
    """The fake Table API, responding to each write after `delay` seconds."""

    def __init__(self, *, delay: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    def handle(self, call: RecordedCall) -> FakeResponse:
        if call.method in ("PUT", "PATCH") and self.delay:
            time.sleep(self.delay)
        return super().handle(call)


def run(
    *,
    delay: float,
    clicks: int,
    concurrency: int,
    warmup: int,
    drain_timeout: float,
    folder: Path,
) -> Figures:
    """Send `clicks` Reassign clicks while the ITSM fake responds after `delay` s."""
    mappings = load_mappings()
    engine = make_engine(f"sqlite:///{folder / f'bench-{delay:g}.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        store_tickets(session)
    roles, people = write_mapping_files(folder)

    with (
        FakeSlack(lifetime_seconds=FAKE_LIFETIME_SECONDS) as slack,
        DelayedServiceNow(delay=delay, lifetime_seconds=FAKE_LIFETIME_SECONDS) as snow,
    ):
        snow.add_record("incident", {"sys_id": SYS_ID, "number": ROUTED_TICKET})
        for group in ("Hive Platform", "HBase Platform"):
            snow.add_group(group)
        settings = SlackSettings(
            signing_secret=SecretStr(SIGNING_SECRET),
            bot_token=SecretStr(BOT_TOKEN),
            api_url=f"{slack.url}/api/",
            roles_file=roles,
            people_file=people,
        )
        app = ChatopsApp(settings=settings, session_factory=sessions, mappings=mappings)
        dispatcher = OutboxDispatcher(
            session_factory=sessions,
            connectors={
                ("servicenow", "default"): ServiceNowConnector(
                    mappings=mappings,
                    settings=ServiceNowSettings(
                        instance=snow.url,
                        user=snow.user,
                        password=SecretStr(snow.password),
                        timeout_seconds=delay + 10,
                    ),
                )
            },
            worker_id="bench-dispatcher",
            backoff=BackoffPolicy(),
            poll_seconds=0.05,
        )
        dispatcher.start()
        try:
            with SlackAppServer(SlackEventsHandler(app, missing=[])) as server:
                timings, statuses = _send_clicks(
                    server, slack, warmup + clicks, concurrency
                )
                timings, statuses = timings[warmup:], statuses[warmup:]
                received = len(snow.writes())
                drain_seconds = _wait_for_empty_outbox(sessions, drain_timeout)
        finally:
            dispatcher.stop()
    engine.dispose()

    ordered = sorted(timings)
    return Figures(
        itsm_delay_seconds=delay,
        clicks=clicks,
        concurrency=concurrency,
        ack_p50_ms=round(statistics.median(ordered) * 1000, 1),
        ack_p99_ms=round(_percentile(ordered, 0.99) * 1000, 1),
        ack_max_ms=round(ordered[-1] * 1000, 1),
        non_200=sum(1 for status in statuses if status != 200),
        write_backs_during_clicks=received,
        drain_seconds=drain_seconds,
    )


def _wait_for_empty_outbox(
    sessions: sessionmaker[Session], timeout: float
) -> float | None:
    """Return the seconds until no action is pending or in flight, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with sessions() as session:
            waiting = count_actions(session, status="pending") + count_actions(
                session, status="in_flight"
            )
        if waiting == 0:
            return round(time.monotonic() - started, 2)
        time.sleep(0.05)
    return None


def _send_clicks(
    server: SlackAppServer, slack: FakeSlack, clicks: int, concurrency: int
) -> tuple[list[float], list[int]]:
    # Indexed by click, so the first entries are the first clicks sent.
    timings = [0.0] * clicks
    statuses = [0] * clicks

    def click(index: int) -> None:
        group = GROUPS[index % len(GROUPS)]
        started = time.perf_counter()
        response = server.click(
            ACTION_REASSIGN,
            f"servicenow:{ROUTED_TICKET}|{group}",
            user_id=RESPONDER,
            response_url=slack.response_url(str(index)),
            # A distinct message per click, so no click counts as a double click.
            message_ts=f"1700000000.{index:06d}",
            select=True,
        )
        timings[index] = time.perf_counter() - started
        statuses[index] = response.status_code

    # Clicks on one ticket are sent in order within each worker thread.
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(click, range(clicks)))
    return timings, statuses


def _percentile(ordered: list[float], fraction: float) -> float:
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


def main(argv: list[str] | None = None) -> None:
    """Run both cases and print a table and the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=200, help="Clicks per case.")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="Clicks in flight at once."
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=120.0,
        help="Seconds to wait for the outbox to empty after the clicks.",
    )
    parser.add_argument(
        "--warmup", type=int, default=10, help="Clicks per case sent before timing."
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=2.0,
        help="Seconds the slow ITSM fake takes per write.",
    )
    args = parser.parse_args(argv)
    if args.clicks < 1 or args.concurrency < 1 or args.delay < 0:
        parser.error("--clicks and --concurrency must be at least 1, --delay >= 0.")

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-slack-") as folder:
        for delay in (0.0, args.delay):
            results.append(
                run(
                    delay=delay,
                    clicks=args.clicks,
                    concurrency=args.concurrency,
                    warmup=max(0, args.warmup),
                    drain_timeout=args.drain_timeout,
                    folder=Path(folder),
                )
            )

    print(
        f"{'ITSM delay':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'writes':>7} {'drain s':>8}"
    )
    for figures in results:
        print(
            f"{figures.itsm_delay_seconds:>9g}s {figures.ack_p50_ms:>8} "
            f"{figures.ack_p99_ms:>8} {figures.ack_max_ms:>8} "
            f"{figures.write_backs_during_clicks:>7} {figures.drain_seconds!s:>8}"
        )
    report = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "results": [asdict(figures) for figures in results],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
