"""Measure durable webhook acks of `opsroute serve` against a bare uvicorn app.

Signed ServiceNow webhooks, each a new incident, are sent over loopback with N
keep-alive connections to three servers in turn, in one run:

- baseline: a minimal ASGI app on uvicorn that reads each request and responds
  200 with the same body, without any work;
- opsroute on a new SQLite file;
- opsroute on PostgreSQL, with --database-url, in a schema made for the run and
  dropped afterwards.

opsroute responds only after the event is committed, so its rate is the rate of
durable acks. Its worker runs meanwhile and routes what arrives, as it would in
production. After each burst the script waits for the inbox to drain and reads
the decision latency (receipt to decision) from /metrics, as bucket bounds.
The model is trained from the helpdesk dataset on the first start of each
database, before the timing starts. Write-backs are not sent, because no
ServiceNow API credentials are configured, so they wait in the outbox.

With --end-to-end the script instead sends webhooks at a fixed rate (--rate)
to `opsroute serve` wired to a fake ServiceNow Table API. It prints, as JSON,
the latency from each send to the write-back of its record. The code of that
mode is in bench_intake_e2e.py.

The load generator runs in this process on the same machine, so client and
server share the cores; the ratio to the baseline is the fairer figure.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SECRET = "bench-webhook-secret"
ACK_BODY = b'{"status":"accepted"}'
START_TIMEOUT_SECONDS = 300.0
DRAIN_TIMEOUT_SECONDS = 300.0


@dataclass
class Figures:
    """One server's results."""

    server: str
    requests: int
    errors: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    drain_seconds: float | None = None
    decision_p50_le_s: float | None = None
    decision_p99_le_s: float | None = None


# The baseline server, run as `bench_intake.py --baseline-port PORT`.


async def baseline_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the request body and respond 200 with the ack body, nothing else."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(ACK_BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": ACK_BODY})


def serve_baseline(port: int) -> None:
    """Run the baseline app until interrupted."""
    import uvicorn

    uvicorn.run(baseline_app, host="127.0.0.1", port=port, log_level="warning")


# Requests and the load generator.


def build_requests(count: int, *, port: int, seed: int) -> list[bytes]:
    """Return `count` signed webhook requests, each for a new incident."""
    from router.datasets.catalog import load_examples

    rng = random.Random(seed)
    examples = load_examples("helpdesk")
    requests = []
    for number in range(count):
        example = rng.choice(examples)
        record = {
            "sys_id": uuid.UUID(int=rng.getrandbits(128)).hex,
            "number": f"INC{seed:03d}{number:07d}",
            "short_description": example.title,
            "description": example.description[:2000],
            "priority": "3",
            "state": "1",
            "sys_mod_count": "0",
            "sys_created_on": "2025-03-01 09:30:00",
            "sys_updated_on": "2025-03-01 09:30:00",
        }
        body = json.dumps(record, separators=(",", ":")).encode()
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        head = (
            "POST /webhooks/servicenow HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Opsroute-Signature: sha256={signature}\r\n"
            "\r\n"
        )
        requests.append(head.encode() + body)
    return requests


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


async def _client(
    port: int,
    requests: Sequence[bytes],
    next_index: Iterator[int],
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for index in next_index:
            started = time.perf_counter()
            try:
                writer.write(requests[index])
                status, close = await _read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                errors.append(0)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def _load(
    port: int, requests: Sequence[bytes], concurrency: int
) -> tuple[list[float], list[int], float]:
    shared = iter(range(len(requests)))
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _client(port, requests, shared, latencies, errors)
            for _ in range(concurrency)
        )
    )
    return latencies, errors, time.perf_counter() - started


def measure(
    name: str, port: int, requests: Sequence[bytes], concurrency: int
) -> Figures:
    """Send every request with `concurrency` connections and summarize."""
    latencies, errors, seconds = asyncio.run(_load(port, requests, concurrency))
    ordered = sorted(latencies)

    def percentile(share: float) -> float:
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    return Figures(
        server=name,
        requests=len(requests),
        errors=len(errors),
        seconds=round(seconds, 3),
        requests_per_second=round((len(latencies) - len(errors)) / seconds, 1),
        p50_ms=round(percentile(0.50), 2),
        p99_ms=round(percentile(0.99), 2),
        max_ms=round(ordered[-1] * 1000, 2) if ordered else float("nan"),
    )


# Servers.


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(
    command: list[str], *, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process, and stop it with SIGTERM (then SIGKILL) on exit."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(20)


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user and system) used so far by a process and its threads.

    Children it started count too, once they have exited and been waited for;
    `process_tree_cpu_seconds` adds the ones still running.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # Fields 14 and 15 of proc(5) (utime, stime) are at 11 and 12 after the name.
    return (int(fields[11]) + int(fields[12])) / ticks


def process_tree_cpu_seconds(pid: int) -> float:
    """Return the CPU time of a process and every descendant still running."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            total += cpu_seconds(current)
            # Each thread lists the children it started, so read every thread's.
            children = [
                int(child)
                for task in Path(f"/proc/{current}/task").iterdir()
                for child in (task / "children").read_text().split()
            ]
        except (FileNotFoundError, ProcessLookupError):
            continue
        pending.extend(children)
    return total


def wait_for_status(port: int, path: str, *, timeout: float) -> None:
    """Poll `GET path` until it returns 200.

    Raises:
        TimeoutError: it did not return 200 within `timeout` seconds.
    """
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (
                httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code
                == 200
            ):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(
        f"GET {path} on port {port} did not return 200 within {timeout} s"
    )


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Return the samples of /metrics by name."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def decided(port: int) -> int:
    """Return how many decisions the replica made."""
    total = scrape(port).get("opsroute_decisions_total", [])
    return int(sum(value for _, value in total))


def latency_bounds(port: int) -> tuple[float | None, float | None]:
    """Return the histogram bucket bounds that hold the p50 and p99 decision latency."""
    buckets = scrape(port).get("opsroute_decision_latency_seconds_bucket", [])
    points = sorted((float(labels["le"]), value) for labels, value in buckets)
    if not points or points[-1][1] == 0:
        return None, None
    total = points[-1][1]

    def bound(share: float) -> float:
        for upper, count in points:
            if count >= share * total:
                return upper
        return points[-1][0]

    return bound(0.5), bound(0.99)


def bench_opsroute(
    name: str,
    database_url: str,
    *,
    args: argparse.Namespace,
    workdir: Path,
) -> Figures:
    """Start `opsroute serve` on the database, warm it up, then measure."""
    port = free_port()
    env = {
        **os.environ,
        "OPSROUTE_DATABASE_URL": database_url,
        "OPSROUTE_PORT": str(port),
        "OPSROUTE_SERVICENOW_WEBHOOK_SECRET": SECRET,
        "OPSROUTE_MODEL_DATASET": "helpdesk",
        "OPSROUTE_MODEL_CACHE_DIR": str(workdir / "cache"),
    }
    command = [sys.executable, "-m", "router.cli.serve", "--log-level", "warning"]
    log = workdir / f"{name}.log"
    with running(command, env=env, log=log):
        wait_for_status(port, "/readyz", timeout=START_TIMEOUT_SECONDS)
        warmup = build_requests(args.warmup, port=port, seed=1)
        measure(name, port, warmup, args.concurrency)
        wait_for_decisions(port, args.warmup)
        requests = build_requests(args.requests, port=port, seed=2)
        figures = measure(name, port, requests, args.concurrency)
        started = time.monotonic()
        wait_for_decisions(port, args.warmup + args.requests)
        figures.drain_seconds = round(time.monotonic() - started, 2)
        figures.decision_p50_le_s, figures.decision_p99_le_s = latency_bounds(port)
    return figures


def wait_for_decisions(port: int, count: int) -> None:
    """Wait until the replica has decided `count` events."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while decided(port) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Fewer than {count} decisions after the burst.")
        time.sleep(0.2)


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """Create a schema for the run and yield a URL that uses it; drop it after."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from router.store.db import make_engine

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    parsed = make_url(url)
    scoped = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="Timed requests.")
    parser.add_argument("--warmup", type=int, default=500, help="Untimed requests.")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="Keep-alive connections."
    )
    parser.add_argument(
        "--database-url",
        help="Also measure PostgreSQL, in a temporary schema of this database.",
    )
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="Measure send-to-write-back latency against a fake ServiceNow instead "
        "(prints JSON).",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="Webhooks per second sent with --end-to-end.",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument("--baseline-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_port:
        serve_baseline(args.baseline_port)
        return
    if args.end_to_end:
        from bench_intake_e2e import report_end_to_end

        report_end_to_end(args)
        return

    results: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="opsroute-bench-") as folder:
        workdir = Path(folder)
        port = free_port()
        command = [sys.executable, __file__, "--baseline-port", str(port)]
        with running(command, env=dict(os.environ), log=workdir / "baseline.log"):
            wait_for_status(port, "/", timeout=30)
            measure(
                "baseline",
                port,
                build_requests(args.warmup, port=port, seed=1),
                args.concurrency,
            )
            requests = build_requests(args.requests, port=port, seed=2)
            results.append(measure("baseline", port, requests, args.concurrency))
        sqlite_url = f"sqlite:///{workdir / 'bench.db'}"
        results.append(
            bench_opsroute("opsroute-sqlite", sqlite_url, args=args, workdir=workdir)
        )
        if args.database_url:
            with postgres_schema(args.database_url) as url:
                results.append(
                    bench_opsroute(
                        "opsroute-postgresql", url, args=args, workdir=workdir
                    )
                )

    baseline = results[0].requests_per_second
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "concurrency": args.concurrency,
        "results": [
            asdict(figures)
            | {"ratio_to_baseline": round(figures.requests_per_second / baseline, 3)}
            for figures in results
        ],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{'server':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'ratio':>7}{'drain s':>9}{'decided p99 <=':>16}"
    )
    for row in report["results"]:
        print(
            f"{row['server']:<22}{row['requests_per_second']:>9}{row['p50_ms']:>9}"
            f"{row['p99_ms']:>9}{row['errors']:>8}{row['ratio_to_baseline']:>7}"
            f"{row['drain_seconds'] or '-':>9}{row['decision_p99_le_s'] or '-':>16}"
        )


if __name__ == "__main__":
    main()
