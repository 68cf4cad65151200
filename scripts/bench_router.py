"""Measure the ticket router's latency, throughput and memory against the bare model.

Held-out tickets of a bundled dataset are shaped as ServiceNow, Jira and Salesforce
records in turn, as `opsroute demo` shapes them, and sent through the router. The same
run times the bare vectorizer and linear model on the same tickets, so the ratios
compare like with like. Each ticket timed one at a time goes through the bare model,
the router and the router with the store in turn, so all three share the same
background load. All timing runs pinned to one CPU core with one BLAS thread.

Model store: the model is looked up by the version of its training data in
--model-database-url (default sqlite:///opsroute-bench.db in the current folder). If
it is missing, it is trained and stored there as the dataset's active model, which
takes minutes for apache-jira, and later runs reuse it. The default is not
OPSROUTE_DATABASE_URL because training would activate a model in that store. Pass
--model-database-url "$OPSROUTE_DATABASE_URL" to reuse a model that `opsroute demo`
stored. Artefacts are cached in OPSROUTE_MODEL_CACHE_DIR (default ~/.cache/opsroute).

Decision store: by default each phase writes to a new SQLite file in a temporary
folder, deleted at exit. With --database-url every phase writes to that database, and
tickets it already contains are updated rather than inserted, so give it an empty one.
"""

from __future__ import annotations

import os

# OpenBLAS, MKL and OpenMP read these once, when numpy is first imported, so they are
# set before any import below loads numpy.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse
import gc
import json
import logging
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_info, threadpool_limits

from router.classification.evaluation import hold_out, train_on
from router.classification.features import input_from_example
from router.classification.model import RoutingModel
from router.classification.registry import has_model, load_model, save_model
from router.classification.training import TrainingParams, model_version
from router.datasets.catalog import DATASETS, Example, get_dataset, load_examples
from router.demo.payloads import DemoRow, to_system_record
from router.demo.run import SYSTEMS
from router.mapping import load_mappings
from router.routing import TicketRouter
from router.settings import CoreSettings
from router.store import db
from router.store.service import save_decisions

logger = logging.getLogger(__name__)

DEFAULT_MODEL_DATABASE_URL = "sqlite:///opsroute-bench.db"
# Targets for one CPU core, printed next to the figures.
TARGET_REPLAY_PER_SECOND = 2000.0
TARGET_SINGLE_P99_MS = 5.0
MIB = 1024 * 1024
# A record shaped for one system: (system name, record).
Shaped = tuple[str, dict[str, Any]]

LATENCY_ROWS = {
    "bare_model": "bare model (vectorize, score, argmax)",
    "router": "router (normalize, classify, decide)",
    "with_store": "router + store, one commit per ticket",
    "store_and_commit": "  of which begin, save_decisions, commit",
}
MEMORY_ROWS = {
    "rss_before_model_bytes": "RSS high-water mark before loading the model",
    "rss_after_model_bytes": "RSS high-water mark after loading the model",
    "rss_end_bytes": "RSS high-water mark at the end",
    "replay_tracemalloc_peak_bytes": "tracemalloc peak during the replay",
}
THROUGHPUT_ROWS = {
    "bare_model": "bare model (vectorize, score, argmax)",
    "replay": "replay (shape, route, store, commit)",
}


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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the options and resolve the default CPU core."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--dataset", choices=sorted(DATASETS), default="apache-jira")
    add(
        "--tickets",
        type=_positive,
        default=2000,
        help=_with_default(
            "held-out tickets timed one at a time, at most the held-out count"
        ),
    )
    add(
        "--replay-tickets",
        type=_positive,
        help="held-out tickets replayed in batches (default all)",
    )
    add(
        "--batch-size",
        type=_positive,
        default=500,
        help=_with_default("tickets per replay batch"),
    )
    add(
        "--warmup",
        type=_positive,
        default=200,
        help=_with_default("training tickets sent untimed before each phase"),
    )
    add(
        "--database-url",
        help="SQLAlchemy URL of the decision store (default: see Decision store)",
    )
    add(
        "--model-database-url",
        default=DEFAULT_MODEL_DATABASE_URL,
        help=_with_default("SQLAlchemy URL of the model store"),
    )
    add(
        "--cpu",
        type=int,
        help="CPU core to pin to (default the highest-numbered one allowed)",
    )
    add("--json", action="store_true", help="print only one JSON object to stdout")
    args = parser.parse_args(argv)

    # NOTE: os.sched_getaffinity and os.sched_setaffinity exist on Linux only, so the
    # script runs on Linux only.
    allowed = sorted(os.sched_getaffinity(0))
    if args.cpu is None:
        args.cpu = allowed[-1]
    elif args.cpu not in allowed:
        parser.error(f"--cpu {args.cpu} is not available; pick one of {allowed}")
    return args


def _with_default(text: str) -> str:
    return f"{text} (default %(default)s)"


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return number


def choose_workload(
    args: argparse.Namespace, *, held_out: list[Example], train: list[Example]
) -> Workload:
    """Take the timed tickets from the held-out split and the warm-up from training."""
    if args.tickets > len(held_out):
        logger.warning(
            "--tickets %d is more than the %d held-out tickets of %s, so %d are timed",
            *(args.tickets, len(held_out), args.dataset, len(held_out)),
        )
    replayed = held_out[: args.replay_tickets] if args.replay_tickets else held_out
    # Training tickets never share a key with held-out ones, so the warm-up leaves
    # the timed tickets new to the store.
    return Workload(
        timed=held_out[: args.tickets],
        replayed=replayed,
        warmup=train[: args.warmup],
        record_offset=get_dataset(args.dataset).record_offset,
        batch_size=args.batch_size,
    )


def obtain_bench_model(
    args: argparse.Namespace, *, train: list[Example], settings: CoreSettings
) -> tuple[RoutingModel, bool]:
    """Load the stored model for this training data, or train and store one.

    Returns:
        The model and whether it was trained in this run.
    """
    params = TrainingParams()
    inputs = [input_from_example(example) for example in train]
    version = model_version(args.dataset, inputs, [e.label for e in train], params)
    with open_store(args.model_database_url) as session:
        if has_model(session, version=version):
            cache = settings.model_cache_dir
            return load_model(session, cache_dir=cache, version=version), False

    logger.warning(
        "Model %s not found in %s, so training it on %d tickets first, "
        "which takes minutes for apache-jira",
        *(version, _hide_password(args.model_database_url), len(train)),
    )
    started = time.perf_counter()
    model = train_on(train, dataset=args.dataset, params=params)
    with open_store(args.model_database_url) as session, session.begin():
        save_model(session, model, activate=True)
    seconds = time.perf_counter() - started
    logger.warning("Trained and stored %s in %.0f s", version, seconds)
    return model, True


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


def _hide_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


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


def render_text(result: dict[str, Any]) -> str:
    """Format a result as tables for a terminal."""
    single, batches, memory = result["single"], result["batches"], result["memory"]
    machine, load = result["machine"], result["load_average"]
    lines = [
        f"opsroute router benchmark: {result['dataset']}, {result['model_version']}",
        f"{result['started_at']}, {machine['cpu_model']}, {machine['cpu_count']} CPUs",
        f"pinned to CPU {machine['pinned_cpu']}, threads {machine['threads']}",
        f"load average (1 min) {load['before']:.2f} before, {load['after']:.2f} after",
    ]

    lines += [
        "",
        f"One ticket at a time: {single['router']['count']} held-out tickets",
        f"{'':40} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}",
    ]
    for key, label in LATENCY_ROWS.items():
        row = single[key]
        times = f"{row['p50_ms']:8.3f} {row['p99_ms']:8.3f} {row['max_ms']:8.3f}"
        lines.append(f"{label:40} {times}")
    p99_met = single["router"]["p99_ms"] < TARGET_SINGLE_P99_MS
    lines.append(
        f"target: router p99 under {TARGET_SINGLE_P99_MS:g} ms, "
        + ("met" if p99_met else "missed")
    )

    lines += [
        "",
        f"Batches of {result['batch_size']}: {batches['replay']['tickets']} tickets",
        f"{'':40} {'tickets/s':>10} {'seconds':>8}",
    ]
    for key, label in THROUGHPUT_ROWS.items():
        row = batches[key]
        lines.append(f"{label:40} {row['per_second']:10.0f} {row['seconds']:8.2f}")
    replay_met = batches["replay"]["per_second"] >= TARGET_REPLAY_PER_SECOND
    lines.append(
        f"target: replay at least {TARGET_REPLAY_PER_SECOND:,.0f} tickets/s, "
        + ("met" if replay_met else "missed")
    )

    lines += ["", "Router / bare model"]
    for name, value in result["slower_than_bare_model"].items():
        lines.append(f"  {name.replace('_', ' ')}: {value}x slower")

    lines += ["", "Memory"]
    for key, label in MEMORY_ROWS.items():
        lines.append(f"  {label}: {memory[key] / MIB:.1f} MiB")
    if result["model_trained"]:
        lines.append("  The model was trained in this run, so RSS includes training.")
    return "\n".join(lines)


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


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Load the model, run every phase, and return the figures as plain data."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = round(os.getloadavg()[0], 2)
    settings = CoreSettings()
    # Mapping errors are reported before a model is trained, which can take minutes.
    mappings = load_mappings(settings.mappings_dir)
    split = hold_out(load_examples(args.dataset), params=TrainingParams())
    rss_before_model = rss_high_water_bytes()
    model, trained = obtain_bench_model(args, train=split.train, settings=settings)
    rss_after_model = rss_high_water_bytes()
    router = TicketRouter(model=model, mappings=mappings)
    work = choose_workload(args, held_out=split.test, train=split.train)

    def store_url(phase: str) -> str:
        return args.database_url or f"sqlite:///{folder / phase}.db"

    figures, traced_peak = measure_all(router, work, cpu=args.cpu, store_url=store_url)
    store = "new SQLite file per phase"
    if args.database_url:
        store = _hide_password(args.database_url)
    return {
        "dataset": args.dataset,
        "model_version": model.version,
        "model_trained": trained,
        "started_at": started_at,
        "batch_size": args.batch_size,
        "warmup_tickets": len(work.warmup),
        "decision_store": store,
        "load_average": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
        **figures,
        "targets": {
            "single_p99_ms_under": TARGET_SINGLE_P99_MS,
            "replay_per_second_at_least": TARGET_REPLAY_PER_SECOND,
        },
        "memory": {
            "rss_before_model_bytes": rss_before_model,
            "rss_after_model_bytes": rss_after_model,
            "rss_end_bytes": rss_high_water_bytes(),
            "replay_tracemalloc_peak_bytes": traced_peak,
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print tables, or one JSON object with --json."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="opsroute-bench-") as folder:
        result = run(args, Path(folder))
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
