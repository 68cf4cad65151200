"""Measure the latency, throughput and memory of the ticket router and the bare model.

`scripts/bench_router.py` parses the options, calls `measure_all` and prints the
figures. Import this module only after OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
MKL_NUM_THREADS are set, as that script does, because BLAS reads them once when
numpy is first imported.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_info, threadpool_limits

from router.classification.features import input_from_example
from router.classification.model import RoutingModel
from router.datasets.catalog import Example
from router.demo.payloads import DemoRow, to_system_record
from router.demo.run import SYSTEMS
from router.routing import TicketRouter
from router.store import db
from router.store.service import save_decisions

# A record shaped for one system: (system name, record).
Shaped = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Latency:
    """Percentiles of per-ticket wall-clock times, in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class Throughput:
    """Tickets handled in batches and the wall-clock seconds they took."""

    tickets: int
    seconds: float
    per_second: float


@dataclass(frozen=True)
class Workload:
    """The tickets of one run: timed one at a time, replayed, and sent to warm up."""

    timed: list[Example]
    replayed: list[Example]
    warmup: list[Example]
    record_offset: int
    batch_size: int


def shape(example: Example, index: int, record_offset: int) -> Shaped:
    """Shape an example as a record of the system whose turn `index` is."""
    system = SYSTEMS[index % len(SYSTEMS)]
    row = DemoRow(
        external_id=example.external_id,
        title=example.title,
        description=example.description,
        issue_type=example.issue_type,
        priority_name=example.priority_name,
        created_at=example.created_at,
        sequence=record_offset + example.row,
    )
    return system, to_system_record(system, row)


def time_interleaved(
    handlers: Mapping[str, Callable[[int], object]], *, count: int, warmup: int
) -> dict[str, np.ndarray]:
    """Call each handler in turn on items 0..count-1, timing all but the warm-up ones.

    Returns:
        Each handler's wall-clock times in nanoseconds, one per timed item.
    """
    samples = {name: np.empty(count - warmup) for name in handlers}
    for index in range(count):
        if index == warmup:
            gc.collect()
        for name, handle in handlers.items():
            started = time.perf_counter_ns()
            handle(index)
            if index >= warmup:
                samples[name][index - warmup] = time.perf_counter_ns() - started
    return samples


def _latency(samples_ns: Sequence[float] | np.ndarray) -> Latency:
    values = np.asarray(samples_ns, dtype=float) / 1e6
    p50, p99 = np.percentile(values, [50, 99])
    rounded = (round(float(value), 4) for value in (p50, p99, values.max()))
    return Latency(len(values), *rounded)


def measure_single(
    router: TicketRouter, work: Workload, session: Session
) -> dict[str, Latency]:
    """Time tickets one at a time: bare model, router, router with a commit each."""
    model, warmup = router.model, len(work.warmup)
    examples = [*work.warmup, *work.timed]
    inputs = [input_from_example(example) for example in examples]
    shaped = [shape(e, i, work.record_offset) for i, e in enumerate(examples)]
    store_ns: list[int] = []

    def bare(index: int) -> object:
        rows = model.features.transform([inputs[index]])
        return model.router.scores(rows).argmax(axis=1)

    def route(index: int) -> object:
        system, record = shaped[index]
        return router.route(router.normalize(system, [record]))

    def route_and_store(index: int) -> None:
        system, record = shaped[index]
        routed = router.route_records(system, [record])
        started = time.perf_counter_ns()
        with session.begin():
            save_decisions(session, items=routed)
        store_ns.append(time.perf_counter_ns() - started)

    handlers = {"bare_model": bare, "router": route, "with_store": route_and_store}
    samples = time_interleaved(handlers, count=len(examples), warmup=warmup)
    figures = {name: _latency(values) for name, values in samples.items()}
    figures["store_and_commit"] = _latency(store_ns[warmup:])
    return figures


def replay(
    router: TicketRouter, session: Session, examples: Sequence[Example], work: Workload
) -> None:
    """Shape, route and store examples in batches, with one commit per batch."""
    for start in range(0, len(examples), work.batch_size):
        by_system: dict[str, list[dict[str, Any]]] = {}
        for index in range(start, min(start + work.batch_size, len(examples))):
            system, record = shape(examples[index], index, work.record_offset)
            by_system.setdefault(system, []).append(record)
        with session.begin():
            for system, records in by_system.items():
                save_decisions(session, items=router.route_records(system, records))


def measure_replay(
    router: TicketRouter, work: Workload, session: Session
) -> Throughput:
    """Time a replay of the held-out tickets, after replaying the warm-up ones."""
    replay(router, session, work.warmup, work)
    gc.collect()
    started = time.perf_counter()
    replay(router, session, work.replayed, work)
    return _throughput(len(work.replayed), time.perf_counter() - started)


def trace_replay(router: TicketRouter, work: Workload, session: Session) -> int:
    """Replay the held-out tickets under tracemalloc and return the peak in bytes.

    Tracing slows every allocation down, so this replay is not timed.
    """
    replay(router, session, work.warmup, work)
    gc.collect()
    tracemalloc.start()
    try:
        replay(router, session, work.replayed, work)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure_bare_batches(model: RoutingModel, work: Workload) -> Throughput:
    """Time the bare vectorizer and linear model on the replayed tickets in batches."""
    inputs = [input_from_example(example) for example in work.replayed]
    size = work.batch_size
    batches = [inputs[i : i + size] for i in range(0, len(inputs), size)]
    model.router.scores(model.features.transform(batches[0])).argmax(axis=1)
    gc.collect()
    started = time.perf_counter()
    for batch in batches:
        model.router.scores(model.features.transform(batch)).argmax(axis=1)
    return _throughput(len(inputs), time.perf_counter() - started)


def _throughput(tickets: int, seconds: float) -> Throughput:
    per_second = tickets / seconds if seconds else 0.0
    return Throughput(tickets, round(seconds, 3), round(per_second, 1))


@contextmanager
def open_store(url: str) -> Iterator[Session]:
    """Migrate the database at `url` and open a session on it."""
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        with db.session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def machine_facts(cpu: int) -> dict[str, Any]:
    """Describe the machine and the thread limits in force while timing."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.partition(":")[2].strip() for line in lines if "model name" in line]
    return {
        "cpu_model": names[0] if names else platform.processor(),
        "cpu_count": os.cpu_count(),
        "pinned_cpu": cpu,
        "threads": {p["internal_api"]: p["num_threads"] for p in threadpool_info()},
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def rss_high_water_bytes() -> int:
    """Return the process's peak resident set size (ru_maxrss), in bytes."""
    # Linux reports ru_maxrss in kibibytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _slower(slow: float, fast: float) -> float | None:
    return round(slow / fast, 2) if fast > 0 else None


def measure_all(
    router: TicketRouter, work: Workload, *, cpu: int, store_url: Callable[[str], str]
) -> tuple[dict[str, Any], int]:
    """Pin the process to one core and run every phase on one BLAS thread.

    Returns:
        The time figures as plain data, and the tracemalloc peak of the replay.
    """
    os.sched_setaffinity(0, {cpu})
    with threadpool_limits(limits=1):
        machine = machine_facts(cpu)
        with open_store(store_url("single")) as session:
            single = measure_single(router, work, session)
        bare = measure_bare_batches(router.model, work)
        with open_store(store_url("replay")) as session:
            replayed = measure_replay(router, work, session)
        with open_store(store_url("traced")) as session:
            traced_peak = trace_replay(router, work, session)

    base, routed, stored = single["bare_model"], single["router"], single["with_store"]
    figures = {
        "machine": machine,
        "single": {key: asdict(value) for key, value in single.items()},
        "batches": {"bare_model": asdict(bare), "replay": asdict(replayed)},
        "slower_than_bare_model": {
            "router_p50": _slower(routed.p50_ms, base.p50_ms),
            "router_p99": _slower(routed.p99_ms, base.p99_ms),
            "router_with_store_p50": _slower(stored.p50_ms, base.p50_ms),
            "router_with_store_p99": _slower(stored.p99_ms, base.p99_ms),
            "replay_throughput": _slower(bare.per_second, replayed.per_second),
        },
    }
    return figures, traced_peak
