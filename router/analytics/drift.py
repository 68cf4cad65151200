"""Drift review: compare a recent window of decisions with a reference window.

Distribution shifts are measured with the population stability index,
PSI = sum((recent - reference) * ln(recent / reference)) over the bins' shares,
with each share floored at `PSI_FLOOR` so an empty bin does not divide by zero.
A common rule of thumb reads PSI below 0.1 as stable and above 0.25 as a large
shift. The default limit of 0.2 sits between them.

Small windows show a PSI above zero from sampling alone. For counts n1 and n2 over
k bins, n1 * n2 / (n1 + n2) * PSI is approximately chi-square with k - 1 degrees of
freedom when nothing shifted, so the expected noise is (k - 1) * (1/n1 + 1/n2). A
measure is flagged when its PSI minus that noise exceeds the limit.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from router.analytics.history import TicketHistory, is_simulated, load_histories
from router.analytics.metrics import TicketFacts, ticket_facts
from router.store.models import decisions

PSI_FLOOR = 1e-4
CONFIDENCE_BINS = 10
# The vocabulary compared is the reference window's most frequent title words.
VOCABULARY_TERMS = 200
_WORD = re.compile(r"[a-z][a-z0-9_]{2,}")


@dataclass(frozen=True)
class DriftLimits:
    """How far each measure may move before the review flags it."""

    label_psi: float = 0.2
    vocabulary_psi: float = 0.2
    confidence_psi: float = 0.2
    # Largest drop of a group's auto-route precision, as a share (0.05 = 5 points).
    precision_drop: float = 0.05
    # Largest rise of the share of tickets transferred at least once.
    transfer_rate_rise: float = 0.05
    # Groups with fewer auto-routed resolved tickets in either window are not compared.
    min_group_tickets: int = 20


@dataclass(frozen=True)
class Windows:
    """The reference window [reference_start, recent_start) and the recent one."""

    reference_start: datetime
    recent_start: datetime
    end: datetime


@dataclass
class DriftReport:
    """The measures of one drift review and what moved beyond its limits."""

    windows: Windows
    reference_tickets: int
    recent_tickets: int
    simulated: bool
    label_psi: float | None
    vocabulary_psi: float | None
    confidence_psi: float | None
    # Expected PSI from sampling alone, keyed label, vocabulary and confidence.
    psi_noise: dict[str, float | None]
    transfer_rate: dict[str, float | None]
    group_precision: dict[str, dict[str, float | int | None]]
    limits: DriftLimits
    flags: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        """Whether any measure moved beyond its limit."""
        return bool(self.flags)

    def as_json(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        return {
            "reference": {
                "start": self.windows.reference_start.isoformat(),
                "end": self.windows.recent_start.isoformat(),
                "tickets": self.reference_tickets,
            },
            "recent": {
                "start": self.windows.recent_start.isoformat(),
                "end": self.windows.end.isoformat(),
                "tickets": self.recent_tickets,
            },
            "simulated": self.simulated,
            "label_psi": self.label_psi,
            "vocabulary_psi": self.vocabulary_psi,
            "confidence_psi": self.confidence_psi,
            "psi_noise": self.psi_noise,
            "transfer_rate": self.transfer_rate,
            "group_precision": self.group_precision,
            "limits": asdict(self.limits),
            "drifted": self.drifted,
            "flags": self.flags,
        }

    def as_text(self) -> str:
        """Return the report as lines for the terminal or a notification."""
        lines = [
            f"opsroute drift review: recent {self.recent_tickets} tickets "
            f"({self.windows.recent_start:%Y-%m-%d} to {self.windows.end:%Y-%m-%d}) "
            f"against reference {self.reference_tickets} "
            f"({self.windows.reference_start:%Y-%m-%d} to "
            f"{self.windows.recent_start:%Y-%m-%d})",
        ]
        if self.simulated:
            lines.append(
                "  NOTE: the follow-up events were simulated by opsroute demo."
            )
        for name, key, value, limit in (
            ("label mix PSI", "label", self.label_psi, self.limits.label_psi),
            (
                "vocabulary PSI",
                "vocabulary",
                self.vocabulary_psi,
                self.limits.vocabulary_psi,
            ),
            (
                "confidence PSI",
                "confidence",
                self.confidence_psi,
                self.limits.confidence_psi,
            ),
        ):
            shown = "n/a" if value is None else f"{value:.4f}"
            noise = self.psi_noise[key]
            expected = "" if noise is None else f", sampling noise {noise:.4f}"
            lines.append(f"  {name:<24} {shown:>8} (limit {limit}{expected})")
        before, after = self.transfer_rate["reference"], self.transfer_rate["recent"]
        lines.append(
            f"  {'transfer rate':<24} {_share(before):>8} -> {_share(after)} "
            f"(limit +{self.limits.transfer_rate_rise})"
        )
        compared = sum(
            1 for row in self.group_precision.values() if row["change"] is not None
        )
        lines.append(f"  {'groups compared':<24} {compared:>8}")
        if self.flags:
            lines.append("  Drift:")
            lines += [f"    - {flag}" for flag in self.flags]
        else:
            lines.append("  No measure moved beyond its limit.")
        return "\n".join(lines)


def default_windows(
    session: Session, *, recent_days: int, reference_days: int
) -> Windows | None:
    """Place the recent window before the newest decision and the reference before it.

    Returns:
        The windows, or None when no decision is stored.
    """
    newest = session.execute(select(func.max(decisions.c.decided_at))).scalar()
    if newest is None:
        return None
    end = newest + timedelta(microseconds=1)
    recent_start = end - timedelta(days=recent_days)
    return Windows(
        reference_start=recent_start - timedelta(days=reference_days),
        recent_start=recent_start,
        end=end,
    )


def review_drift(
    session: Session, *, windows: Windows, limits: DriftLimits
) -> DriftReport:
    """Measure what moved between the two windows and flag it against the limits."""
    reference = load_histories(
        session, since=windows.reference_start, until=windows.recent_start
    )
    recent = load_histories(session, since=windows.recent_start, until=windows.end)
    return compare_windows(reference, recent, windows=windows, limits=limits)


def compare_windows(
    reference: Sequence[TicketHistory],
    recent: Sequence[TicketHistory],
    *,
    windows: Windows,
    limits: DriftLimits,
) -> DriftReport:
    """Compare two sets of ticket histories."""
    reference_facts = [ticket_facts(history) for history in reference]
    recent_facts = [ticket_facts(history) for history in recent]
    label = _categorical_shift(
        [h.first.resolver_group for h in reference],
        [h.first.resolver_group for h in recent],
    )
    vocabulary = _vocabulary_shift(reference, recent)
    confidence = _confidence_shift(
        [h.first.confidence for h in reference],
        [h.first.confidence for h in recent],
    )
    report = DriftReport(
        windows=windows,
        reference_tickets=len(reference),
        recent_tickets=len(recent),
        simulated=is_simulated(reference) or is_simulated(recent),
        label_psi=label[0],
        vocabulary_psi=vocabulary[0],
        confidence_psi=confidence[0],
        psi_noise={
            "label": label[1],
            "vocabulary": vocabulary[1],
            "confidence": confidence[1],
        },
        transfer_rate={
            "reference": _transfer_rate(reference_facts),
            "recent": _transfer_rate(recent_facts),
        },
        group_precision=_group_precision(
            reference_facts, recent_facts, minimum=limits.min_group_tickets
        ),
        limits=limits,
    )
    report.flags = _flags(report)
    return report


def _flags(report: DriftReport) -> list[str]:
    limits = report.limits
    flags = []
    for name, key, value, limit in (
        ("label mix", "label", report.label_psi, limits.label_psi),
        (
            "input vocabulary",
            "vocabulary",
            report.vocabulary_psi,
            limits.vocabulary_psi,
        ),
        (
            "confidence distribution",
            "confidence",
            report.confidence_psi,
            limits.confidence_psi,
        ),
    ):
        noise = report.psi_noise[key] or 0.0
        if value is not None and value - noise > limit:
            flags.append(
                f"{name} shifted: PSI {value:.4f} is above {limit} "
                f"plus the sampling noise {noise:.4f}"
            )
    before = report.transfer_rate["reference"]
    after = report.transfer_rate["recent"]
    if before is not None and after is not None:
        if after - before > limits.transfer_rate_rise:
            flags.append(
                f"transfer rate rose from {before:.4f} to {after:.4f}, "
                f"more than {limits.transfer_rate_rise}"
            )
    for group, row in report.group_precision.items():
        change = row["change"]
        if change is not None and -float(change) > limits.precision_drop:
            flags.append(
                f"auto-route precision of {group} fell from {row['reference']:.4f} "
                f"to {row['recent']:.4f}, more than {limits.precision_drop}"
            )
    return flags


def psi(reference: Sequence[float], recent: Sequence[float]) -> float:
    """Return the population stability index of two share vectors of equal length."""
    total = 0.0
    for before, after in zip(reference, recent, strict=True):
        before = max(before, PSI_FLOOR)
        after = max(after, PSI_FLOOR)
        total += (after - before) * math.log(after / before)
    return round(total, 4)


Shift = tuple[float | None, float | None]


def _shift(before: Counter[str], after: Counter[str], keys: Sequence[str]) -> Shift:
    # Returns the PSI and the PSI expected from sampling alone.
    total_before, total_after = sum(before.values()), sum(after.values())
    if not total_before or not total_after:
        return None, None
    value = psi(
        [before[key] / total_before for key in keys],
        [after[key] / total_after for key in keys],
    )
    used = sum(1 for key in keys if before[key] or after[key])
    noise = max(used - 1, 0) * (1 / total_before + 1 / total_after)
    return value, round(noise, 4)


def _categorical_shift(reference: Iterable[str], recent: Iterable[str]) -> Shift:
    before, after = Counter(reference), Counter(recent)
    return _shift(before, after, sorted(set(before) | set(after)))


def _vocabulary_shift(
    reference: Sequence[TicketHistory], recent: Sequence[TicketHistory]
) -> Shift:
    before = Counter(w for h in reference for w in _WORD.findall(h.title.lower()))
    after = Counter(w for h in recent for w in _WORD.findall(h.title.lower()))
    terms = [term for term, _ in before.most_common(VOCABULARY_TERMS)]
    kept = set(terms)
    other = "\0other"
    before_binned = Counter({t: before[t] for t in terms})
    before_binned[other] = sum(n for t, n in before.items() if t not in kept)
    after_binned = Counter({t: after[t] for t in terms})
    after_binned[other] = sum(n for t, n in after.items() if t not in kept)
    return _shift(before_binned, after_binned, [*terms, other])


def _confidence_shift(reference: Sequence[float], recent: Sequence[float]) -> Shift:
    def binned(values: Sequence[float]) -> Counter[str]:
        return Counter(
            str(min(int(value * CONFIDENCE_BINS), CONFIDENCE_BINS - 1))
            for value in values
        )

    keys = [str(index) for index in range(CONFIDENCE_BINS)]
    return _shift(binned(reference), binned(recent), keys)


def _transfer_rate(facts: Sequence[TicketFacts]) -> float | None:
    assigned = [f for f in facts if f.first_group is not None]
    if not assigned:
        return None
    return round(sum(f.transfers > 0 for f in assigned) / len(assigned), 4)


def _group_precision(
    reference: Sequence[TicketFacts], recent: Sequence[TicketFacts], *, minimum: int
) -> dict[str, dict[str, float | int | None]]:
    def precision(facts: Sequence[TicketFacts]) -> dict[str, tuple[int, int]]:
        counts: dict[str, tuple[int, int]] = {}
        for item in facts:
            if item.auto_routed and item.owner is not None:
                right, total = counts.get(item.decided_group, (0, 0))
                counts[item.decided_group] = (
                    right + (item.owner == item.decided_group),
                    total + 1,
                )
        return counts

    before, after = precision(reference), precision(recent)
    table: dict[str, dict[str, float | int | None]] = {}
    for group in sorted(set(before) | set(after)):
        right_before, total_before = before.get(group, (0, 0))
        right_after, total_after = after.get(group, (0, 0))
        old = right_before / total_before if total_before else None
        new = right_after / total_after if total_after else None
        comparable = min(total_before, total_after) >= minimum
        table[group] = {
            "reference": None if old is None else round(old, 4),
            "recent": None if new is None else round(new, 4),
            "reference_tickets": total_before,
            "recent_tickets": total_after,
            "change": round(new - old, 4)
            if comparable and old is not None and new is not None
            else None,
        }
    return table


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
