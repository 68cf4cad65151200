"""The routing report: figures, breakdowns and charts' data as one JSON-ready dict."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from router.analytics.history import is_simulated, load_histories
from router.analytics.labels import collect_labels, count_sources, unknown_labels
from router.analytics.metrics import (
    BREAKDOWNS,
    breakdown,
    confidence_histogram,
    confusion,
    summarize,
    ticket_facts,
)
from router.store.registry import find_active_model, find_shadow_model

SIMULATED_NOTE = (
    "The follow-up events in this report were simulated by opsroute demo: "
    "the transfers and resolutions did not happen in a real system."
)

# Figures printed in the text report, with their labels and units.
TEXT_FIGURES = (
    ("first_touch_accuracy", "first-touch accuracy", "share"),
    ("transfers_per_ticket", "transfers per ticket", "number"),
    ("time_to_owner_p50_seconds", "time to owner, median", "seconds"),
    ("time_to_owner_p90_seconds", "time to owner, 90th percentile", "seconds"),
    ("sla_breaches_from_reassignment", "SLA breaches from reassignment", "share"),
    ("escalation_cycle_p50_seconds", "escalation cycle, median", "seconds"),
    ("false_escalation_rate", "false-escalation rate", "share"),
    ("review_share", "review share", "share"),
    ("reviewer_agreement", "reviewer agreement", "share"),
)


def build_report(session: Session, *, since: datetime | None = None) -> dict[str, Any]:
    """Compute the report over the tickets first decided at or after `since`."""
    histories = load_histories(session, since=since)
    facts = [ticket_facts(history) for history in histories]
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(),
        "since": None if since is None else since.isoformat(),
        "simulated": is_simulated(histories),
        **summarize(facts),
    }
    report["note"] = SIMULATED_NOTE if report["simulated"] else None
    for name, key in BREAKDOWNS.items():
        report[f"by_{name}"] = breakdown(facts, key)
    report["confusion"] = confusion(facts)
    thresholds = Counter(history.first.threshold for history in histories)
    report["threshold"] = thresholds.most_common(1)[0][0] if thresholds else None
    report["confidence_histogram"] = confidence_histogram(facts)
    report["models"] = _models(session)
    return report


def _models(session: Session) -> dict[str, Any]:
    active = find_active_model(session)
    shadow = find_shadow_model(session)
    labels = collect_labels(session)
    known = set(active.label_set) if active is not None else set()
    return {
        "active": None if active is None else active.version,
        "shadow": None if shadow is None else shadow.version,
        "labelled_tickets": len(labels),
        "label_sources": count_sources(labels),
        # Groups people chose that the active model cannot predict (new queues).
        "unknown_labels": unknown_labels(labels, known=known) if active else {},
    }


def render_text(report: dict[str, Any]) -> str:
    """Format the report as tables for the terminal."""
    since = report["since"] or "the first decision"
    lines = [f"opsroute report: {report['tickets']} tickets since {since}"]
    if report["note"]:
        lines.append(f"  NOTE: {report['note']}")
    lines.append("")
    for key, label, unit in TEXT_FIGURES:
        lines.append(f"  {label:<32} {format_value(report[key], unit)}")
    counts = report["counts"]
    lines.append(
        f"  {'counted':<32} {counts['first_touch_judged']} resolved and assigned, "
        f"{counts['transfers']} transfers, {counts['sla_breaches']} SLA breaches, "
        f"{counts['escalations']} escalations, {counts['reviews_resolved']} reviews"
    )
    models = report["models"]
    lines.append(
        f"  {'models':<32} active {models['active'] or 'none'}, "
        f"shadow {models['shadow'] or 'none'}"
    )
    if models["unknown_labels"]:
        queues = ", ".join(f"{k} ({v})" for k, v in models["unknown_labels"].items())
        lines.append(f"  {'groups the model never saw':<32} {queues}")
    for name in ("resolver_group", "source_system", "intent", "week"):
        lines += ["", *_table(name.replace("_", " "), report[f"by_{name}"])]
    return "\n".join(lines)


def _table(title: str, rows: dict[str, dict[str, Any]]) -> list[str]:
    header = (
        f"  {title:<24} {'tickets':>7} {'first-touch':>11} {'transfers':>9} "
        f"{'to owner p50':>12} {'review':>7}"
    )
    lines = [header]
    for name, figures in rows.items():
        lines.append(
            f"  {name[:24]:<24} {figures['tickets']:>7} "
            f"{format_value(figures['first_touch_accuracy'], 'share'):>11} "
            f"{format_value(figures['transfers_per_ticket'], 'number'):>9} "
            f"{format_value(figures['time_to_owner_p50_seconds'], 'seconds'):>12} "
            f"{format_value(figures['review_share'], 'share'):>7}"
        )
    return lines


def format_value(value: float | None, unit: str) -> str:
    """Format a figure for people: n/a for None, durations in h or min."""
    if value is None:
        return "n/a"
    if unit == "seconds":
        if value >= 3600:
            return f"{value / 3600:.1f} h"
        return f"{value / 60:.1f} min"
    if unit == "share":
        return f"{value:.4f}"
    return f"{value:.2f}"
