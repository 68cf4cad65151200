"""`opsroute demo`: train or reuse a model, then replay held-out tickets end to end."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import make_url
from tqdm import tqdm

from router.analytics.learning import LearningHooks
from router.classification.evaluation import hold_out
from router.classification.metrics import auto_route_figures, routing_metrics
from router.classification.model import RoutingModel
from router.classification.provisioning import obtain_model
from router.classification.training import TrainingParams
from router.datasets.catalog import Example, get_dataset, load_examples
from router.demo.followup import arrival_times, record_follow_up
from router.demo.payloads import DemoRow, to_system_record
from router.demo.report import DemoReport
from router.mapping import load_mappings
from router.routing import TicketRouter
from router.schemas import Decision, DecisionAction
from router.settings import CoreSettings
from router.store import db
from router.store.service import save_decisions

logger = logging.getLogger(__name__)

# Held-out tickets arrive in turn from each system, shaped like that system's records.
SYSTEMS = ("servicenow", "jira", "salesforce")
CURVE_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


@dataclass(frozen=True)
class DemoOptions:
    """Replay settings: the dataset, the number of held-out tickets, the batch size."""

    dataset: str = "apache-jira"
    limit: int | None = None
    batch_size: int = 500
    retrain: bool = False
    progress: bool = True


def run_demo(
    options: DemoOptions, *, settings: CoreSettings | None = None
) -> DemoReport:
    """Train or reuse a model, replay the held-out tickets, and report."""
    settings = settings or CoreSettings()
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    session_factory = db.session_factory(engine)
    mappings = load_mappings(settings.mappings_dir)

    params = TrainingParams()
    examples = load_examples(options.dataset)
    split = hold_out(examples, params=params)
    train, held_out = split.train, split.test
    model, trained, training_seconds = obtain_model(
        session_factory,
        dataset=options.dataset,
        train=train,
        settings=settings,
        params=params,
        retrain=options.retrain,
        held_out=held_out,
        threshold=mappings.thresholds.default,
    )
    replayed = held_out[: options.limit] if options.limit else held_out

    router = TicketRouter(model=model, mappings=mappings)
    # Read the shadow model and the labels once per run.
    hooks = LearningHooks(
        mappings=mappings,
        cache_dir=settings.model_cache_dir,
        refresh_seconds=float("inf"),
    )
    started = time.perf_counter()
    decisions, systems = _replay(router, hooks, session_factory, replayed, options)
    seconds = time.perf_counter() - started
    engine.dispose()

    report = _report(
        decisions,
        [example.label for example in replayed],
        options=options,
        model=model,
        held_out=len(held_out),
        seconds=seconds,
        threshold=mappings.thresholds.default,
        systems=systems,
    )
    report.database = make_url(settings.database_url).render_as_string(
        hide_password=True
    )
    report.model_trained = trained
    report.training_seconds = training_seconds
    return report


def _replay(
    router: TicketRouter,
    hooks: LearningHooks,
    session_factory: Any,
    examples: Sequence[Example],
    options: DemoOptions,
) -> tuple[list[Decision], list[str]]:
    decisions: list[Decision] = []
    systems: list[str] = []
    record_offset = get_dataset(options.dataset).record_offset
    arrivals = arrival_times(len(examples), run_started=datetime.now(UTC))
    bar = tqdm(
        total=len(examples), desc="Routing", unit="ticket", disable=not options.progress
    )
    with bar, session_factory() as session:
        for batch in _batches(examples, options.batch_size):
            first = len(systems)
            by_system: dict[str, list[tuple[int, dict[str, Any]]]] = {}
            for offset, example in enumerate(batch):
                system = SYSTEMS[(len(systems) + offset) % len(SYSTEMS)]
                sequence = record_offset + example.row
                record = to_system_record(system, _demo_row(example, sequence))
                by_system.setdefault(system, []).append((offset, record))
            ordered: list[Decision | None] = [None] * len(batch)
            order: list[str] = [""] * len(batch)
            with session.begin():
                for system, records in by_system.items():
                    routed = router.route_records(
                        system, [record for _, record in records]
                    )
                    routed = [
                        (ticket, _arrived(decision, arrivals[first + offset]))
                        for (offset, _), (ticket, decision) in zip(
                            records, routed, strict=True
                        )
                    ]
                    routed = hooks.guard(session, routed)
                    decision_ids = save_decisions(
                        session, items=routed, audit_at_decision_time=True
                    )
                    hooks.record_shadow(session, routed, decision_ids)
                    truth = [batch[offset].label for offset, _ in records]
                    record_follow_up(session, items=routed, true_groups=truth)
                    for (offset, _), (_, decision) in zip(records, routed, strict=True):
                        ordered[offset] = decision
                        order[offset] = system
            decisions.extend(d for d in ordered if d is not None)
            systems.extend(order)
            bar.update(len(batch))
    return decisions, systems


def _arrived(decision: Decision, at: datetime) -> Decision:
    # model_copy skips validation, which matters for tens of thousands of tickets.
    return decision.model_copy(update={"decided_at": at})


def _demo_row(example: Example, sequence: int) -> DemoRow:
    return DemoRow(
        external_id=example.external_id,
        title=example.title,
        description=example.description,
        issue_type=example.issue_type,
        priority_name=example.priority_name,
        created_at=example.created_at,
        sequence=sequence,
    )


def _batches(items: Sequence[Example], size: int) -> Iterator[Sequence[Example]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _report(
    decisions: Sequence[Decision],
    truth: Sequence[str],
    *,
    options: DemoOptions,
    model: RoutingModel,
    held_out: int,
    seconds: float,
    threshold: float,
    systems: Sequence[str],
) -> DemoReport:
    predicted = [d.resolver_group for d in decisions]
    figures = routing_metrics(truth, predicted)
    correct = [p == t for p, t in zip(predicted, truth, strict=True)]
    auto = [d.action is DecisionAction.AUTO_ROUTE for d in decisions]
    forced = sum(d.action is DecisionAction.FORCED_REVIEW for d in decisions)
    routed = sum(auto)
    total = len(decisions) or 1
    hits = sum(c for c, a in zip(correct, auto, strict=True) if a)
    confidence = [d.confidence for d in decisions]
    curve = []
    for value in CURVE_THRESHOLDS:
        point = auto_route_figures(confidence, correct, threshold=value)
        curve.append(
            {
                "threshold": value,
                "share": round(point.share, 4),
                "precision": None
                if point.precision is None
                else round(point.precision, 4),
            }
        )
    examples: dict[str, str] = {}
    for decision in decisions:
        system, _, ticket_id = decision.ticket_key.partition(":")
        examples.setdefault(system, ticket_id)
    return DemoReport(
        dataset=options.dataset,
        database="",
        model_version=model.version,
        model_trained=False,
        training_seconds=None,
        tickets=len(decisions),
        held_out=held_out,
        seconds=seconds,
        tickets_per_second=len(decisions) / seconds if seconds else 0.0,
        accuracy=figures.accuracy,
        macro_f1=figures.macro_f1,
        auto_route_share=routed / total,
        auto_route_precision=hits / routed if routed else None,
        review_share=(len(decisions) - routed) / total,
        forced_review_share=forced / total,
        threshold=threshold,
        by_system=dict(Counter(systems)),
        groups=figures.groups,
        threshold_curve=curve,
        example_ids=examples,
    )
