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
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# When this file runs as a script, Python puts its folder first on sys.path, so the
# sibling module imports from any working directory.
from router_bench_measure import (
    Workload,
    measure_all,
    open_store,
    rss_high_water_bytes,
)
from sqlalchemy.engine import make_url

from router.classification.evaluation import hold_out, train_on
from router.classification.features import input_from_example
from router.classification.model import RoutingModel
from router.classification.registry import has_model, load_model, save_model
from router.classification.training import TrainingParams, model_version
from router.datasets.catalog import DATASETS, Example, get_dataset, load_examples
from router.mapping import load_mappings
from router.routing import TicketRouter
from router.settings import CoreSettings

logger = logging.getLogger(__name__)

DEFAULT_MODEL_DATABASE_URL = "sqlite:///opsroute-bench.db"
# Targets for one CPU core, printed next to the figures.
TARGET_REPLAY_PER_SECOND = 2000.0
TARGET_SINGLE_P99_MS = 5.0
MIB = 1024 * 1024

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


def _hide_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


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
