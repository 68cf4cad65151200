"""Measure webhook-to-write-back latency of `opsroute serve` with a fake ServiceNow.

Run by `bench_intake.py --end-to-end`. A fake ServiceNow Table API from
router/sandbox/ runs in a thread of this process, with the helpdesk taxonomy's
groups and one incident per webhook. The served replica writes back to it with
Basic authentication. Webhooks are sent at a fixed rate, and each write-back is
matched to its webhook by sys_id. Both timestamps come from `time.perf_counter`
in this process, so the latency spans the ack, the worker's decision, the
outbox, the dispatcher and the HTTP calls of pysnow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench_intake import (
    DRAIN_TIMEOUT_SECONDS,
    SECRET,
    START_TIMEOUT_SECONDS,
    _read_response,
    build_requests,
    free_port,
    postgres_schema,
    process_tree_cpu_seconds,
    running,
    scrape,
    wait_for_status,
)

from router.sandbox.server import FakeResponse, RecordedCall, json_response
from router.sandbox.servicenow import FakeServiceNow, _matches

SNOW_USER = "opsroute-bench"
SNOW_PASSWORD = "bench-snow-password"


class TimedServiceNow(FakeServiceNow):
    """The fake Table API, timing the first PUT or PATCH of each record.

    Journal rows are indexed by record, because the connector checks each
    record's marker before it writes and the base fake scans every row, which
    would make the fake the bottleneck after a few thousand write-backs.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(user=SNOW_USER, password=SNOW_PASSWORD, **kwargs)
        self.received: dict[str, float] = {}
        self._journal_by_record: dict[str, list[dict[str, Any]]] = {}

    def add_record(self, table: str, record: dict[str, Any]) -> dict[str, Any]:
        stored = super().add_record(table, record)
        if table == "sys_journal_field":
            rows = self._journal_by_record.setdefault(stored["element_id"], [])
            rows.append(stored)
        return stored

    def handle(self, call: RecordedCall) -> FakeResponse:
        if call.method in ("PUT", "PATCH"):
            sys_id = call.path.rsplit("/", 1)[-1]
            self.received.setdefault(sys_id, time.perf_counter())
        return super().handle(call)

    def _query(self, table: str, call: RecordedCall) -> FakeResponse:
        query = call.param("sysparm_query") or ""
        conditions = query.split("^")
        record_ids = [
            condition.partition("=")[2]
            for condition in conditions
            if condition.startswith("element_id=")
        ]
        if table != "sys_journal_field" or len(record_ids) != 1:
            return super()._query(table, call)
        rows = [
            row
            for row in self._journal_by_record.get(record_ids[0], [])
            if all(_matches(row, condition) for condition in conditions)
        ]
        limit = int(call.param("sysparm_limit") or 10000)
        fields = [
            name for name in (call.param("sysparm_fields") or "").split(",") if name
        ]
        page = [{name: row.get(name, "") for name in fields} for row in rows[:limit]]
        return json_response(
            200, {"result": page}, headers={"X-Total-Count": str(len(rows))}
        )


@dataclass
class EndToEndFigures:
    """One replica's end-to-end results at one request rate."""

    server: str
    rate_per_second: float
    requests: int
    errors: int
    send_seconds: float
    max_send_lag_ms: float
    auto_routed: int
    sent_to_review: int
    write_backs: int
    write_back_failures: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    last_write_back_after_last_send_s: float
    # CPU milliseconds per timed webhook, from the send of the first to the last
    # write-back: the served replica with its children, and this process (load
    # generator and fake ServiceNow).
    serve_cpu_ms_per_event: float
    bench_cpu_ms_per_event: float


def record_ids(requests: Sequence[bytes]) -> list[tuple[str, str]]:
    """Return the (sys_id, number) of each webhook request."""
    pairs = []
    for request in requests:
        record = json.loads(request.partition(b"\r\n\r\n")[2])
        pairs.append((record["sys_id"], record["number"]))
    return pairs


async def _paced_client(
    port: int,
    requests: Sequence[bytes],
    schedule: Iterator[tuple[int, float]],
    sent: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for index, due in schedule:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[index] = time.perf_counter()
            try:
                writer.write(requests[index])
                status, close = await _read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                errors.append(0)
                close = True
                status = 200
            if status != 200:
                errors.append(status)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def _paced_load(
    port: int, requests: Sequence[bytes], *, rate: float, concurrency: int
) -> tuple[list[float], list[int], float]:
    """Send request i at start + i / rate on the first free connection."""
    sent = [0.0] * len(requests)
    errors: list[int] = []
    start = time.perf_counter() + 0.05
    schedule = ((index, start + index / rate) for index in range(len(requests)))
    await asyncio.gather(
        *(
            _paced_client(port, requests, schedule, sent, errors)
            for _ in range(concurrency)
        )
    )
    lags = [sent[index] - (start + index / rate) for index in range(len(sent))]
    return sent, errors, max(lags)


def decisions_by_action(port: int) -> dict[str, int]:
    """Return the replica's decision counts by action."""
    samples = scrape(port).get("opsroute_decisions_total", [])
    return {labels["action"]: int(value) for labels, value in samples}


def write_back_failures(port: int) -> int:
    """Return how many outbox deliveries failed, retried or dead."""
    samples = scrape(port).get("opsroute_writeback_failures_total", [])
    return int(sum(value for _, value in samples))


def wait_until(check: Any, *, timeout: float, description: str) -> None:
    """Poll `check()` every 50 ms until it is true.

    Raises:
        TimeoutError: it stayed false for `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"Timed out after {timeout} s waiting for {description}."
            )
        time.sleep(0.05)


def helpdesk_group_names() -> list[str]:
    """Return the ServiceNow group names of the shipped taxonomy."""
    from router.mapping.loader import load_mappings

    groups = load_mappings().taxonomy.resolver_groups
    return sorted({group.targets.servicenow or group.name for group in groups})


def bench_end_to_end(
    name: str,
    database_url: str,
    *,
    args: argparse.Namespace,
    workdir: Path,
) -> EndToEndFigures:
    """Start a fake ServiceNow and `opsroute serve`, then send webhooks at a rate."""
    port = free_port()
    warmup = build_requests(args.warmup, port=port, seed=1)
    requests = build_requests(args.requests, port=port, seed=2)
    lifetime = START_TIMEOUT_SECONDS + args.requests / args.rate + 2 * 600
    with TimedServiceNow(lifetime_seconds=lifetime) as fake:
        for group in helpdesk_group_names():
            fake.add_group(group)
        for sys_id, number in record_ids([*warmup, *requests]):
            fake.add_record("incident", {"sys_id": sys_id, "number": number})
        env = {
            **os.environ,
            "OPSROUTE_DATABASE_URL": database_url,
            "OPSROUTE_PORT": str(port),
            "OPSROUTE_SERVICENOW_WEBHOOK_SECRET": SECRET,
            "OPSROUTE_SERVICENOW_INSTANCE": fake.url,
            "OPSROUTE_SERVICENOW_USER": SNOW_USER,
            "OPSROUTE_SERVICENOW_PASSWORD": SNOW_PASSWORD,
            "OPSROUTE_MODEL_DATASET": "helpdesk",
            "OPSROUTE_MODEL_CACHE_DIR": str(workdir / "cache"),
        }
        command = [sys.executable, "-m", "router.cli.serve", "--log-level", "warning"]
        with running(command, env=env, log=workdir / f"{name}.log") as served:
            wait_for_status(port, "/readyz", timeout=START_TIMEOUT_SECONDS)
            asyncio.run(
                _paced_load(port, warmup, rate=args.rate, concurrency=args.concurrency)
            )
            wait_until(
                lambda: sum(decisions_by_action(port).values()) >= len(warmup),
                timeout=DRAIN_TIMEOUT_SECONDS,
                description="the warm-up decisions",
            )
            warm_auto = decisions_by_action(port).get("auto_route", 0)
            wait_until(
                lambda: len(fake.received) >= warm_auto,
                timeout=DRAIN_TIMEOUT_SECONDS,
                description="the warm-up write-backs",
            )
            warm_actions = decisions_by_action(port)
            warm_failures = write_back_failures(port)
            serve_cpu_before = process_tree_cpu_seconds(served.pid)
            bench_cpu_before = time.process_time()

            sent, errors, max_lag = asyncio.run(
                _paced_load(
                    port, requests, rate=args.rate, concurrency=args.concurrency
                )
            )
            wait_until(
                lambda: (
                    sum(decisions_by_action(port).values())
                    >= len(warmup) + len(requests)
                ),
                timeout=DRAIN_TIMEOUT_SECONDS,
                description="the timed decisions",
            )
            actions = decisions_by_action(port)
            auto = actions.get("auto_route", 0) - warm_actions.get("auto_route", 0)
            timed_ids = [sys_id for sys_id, _ in record_ids(requests)]
            wait_until(
                lambda: sum(sys_id in fake.received for sys_id in timed_ids) >= auto,
                timeout=DRAIN_TIMEOUT_SECONDS,
                description=f"{auto} write-backs",
            )
            serve_cpu = process_tree_cpu_seconds(served.pid) - serve_cpu_before
            bench_cpu = time.process_time() - bench_cpu_before
            failures = write_back_failures(port) - warm_failures

    latencies = sorted(
        fake.received[sys_id] - sent[index]
        for index, sys_id in enumerate(timed_ids)
        if sys_id in fake.received
    )
    last_received = max(
        (fake.received[sys_id] for sys_id in timed_ids if sys_id in fake.received),
        default=float("nan"),
    )

    def percentile_ms(share: float) -> float:
        if not latencies:
            return float("nan")
        index = min(len(latencies) - 1, int(share * len(latencies)))
        return round(latencies[index] * 1000, 1)

    review = sum(actions.values()) - sum(warm_actions.values()) - auto
    return EndToEndFigures(
        server=name,
        rate_per_second=args.rate,
        requests=len(requests),
        errors=len(errors),
        send_seconds=round(max(sent) - min(sent), 3),
        max_send_lag_ms=round(max_lag * 1000, 1),
        auto_routed=auto,
        sent_to_review=review,
        write_backs=len(latencies),
        write_back_failures=failures,
        p50_ms=percentile_ms(0.50),
        p99_ms=percentile_ms(0.99),
        max_ms=round(latencies[-1] * 1000, 1) if latencies else float("nan"),
        last_write_back_after_last_send_s=round(last_received - max(sent), 3),
        serve_cpu_ms_per_event=round(serve_cpu * 1000 / len(requests), 3),
        bench_cpu_ms_per_event=round(bench_cpu * 1000 / len(requests), 3),
    )


def report_end_to_end(args: argparse.Namespace) -> None:
    """Run the end-to-end benchmark on SQLite (and PostgreSQL) and print it."""
    if args.rate <= 0:
        raise SystemExit(f"--rate must be positive, got {args.rate}.")
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="opsroute-bench-") as folder:
        workdir = Path(folder)
        sqlite_url = f"sqlite:///{workdir / 'bench.db'}"
        results.append(
            bench_end_to_end("opsroute-sqlite", sqlite_url, args=args, workdir=workdir)
        )
        if args.database_url:
            with postgres_schema(args.database_url) as url:
                results.append(
                    bench_end_to_end(
                        "opsroute-postgresql", url, args=args, workdir=workdir
                    )
                )
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "concurrency": args.concurrency,
        "results": [asdict(figures) for figures in results],
    }
    print(json.dumps(report, indent=2))
