"""Figures of a demo replay, printed as a table or as one JSON object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from router.classification.metrics import GroupFigures


@dataclass
class DemoReport:
    """Figures of one `opsroute demo` run: volume, speed and routing quality."""

    dataset: str
    database: str
    model_version: str
    model_trained: bool
    training_seconds: float | None
    tickets: int
    held_out: int
    seconds: float
    tickets_per_second: float
    accuracy: float
    macro_f1: float
    auto_route_share: float
    auto_route_precision: float | None
    review_share: float
    forced_review_share: float
    threshold: float
    by_system: dict[str, int]
    groups: list[GroupFigures] = field(default_factory=list)
    threshold_curve: list[dict[str, float | None]] = field(default_factory=list)
    example_ids: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        return {
            "dataset": self.dataset,
            "tickets": self.tickets,
            "held_out": self.held_out,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "auto_route_share": round(self.auto_route_share, 4),
            "auto_route_precision": _round(self.auto_route_precision),
            "review_share": round(self.review_share, 4),
            "forced_review_share": round(self.forced_review_share, 4),
            "threshold": self.threshold,
            "tickets_per_second": round(self.tickets_per_second, 1),
            "seconds": round(self.seconds, 2),
            "model_version": self.model_version,
            "model_trained": self.model_trained,
            "training_seconds": _round(self.training_seconds, 1),
            "database": self.database,
            "by_system": self.by_system,
            "threshold_curve": self.threshold_curve,
            "groups": [
                {
                    "group": g.group,
                    "precision": round(g.precision, 4),
                    "recall": round(g.recall, 4),
                    "f1": round(g.f1, 4),
                    "support": g.support,
                }
                for g in self.groups
            ],
        }

    def as_text(self) -> str:
        """Return the report as a terminal table."""
        precision = (
            "n/a"
            if self.auto_route_precision is None
            else f"{self.auto_route_precision:.4f}"
        )
        trained = (
            f"trained in {self.training_seconds:.1f} s"
            if self.model_trained and self.training_seconds is not None
            else "reused from the store"
        )
        systems = ", ".join(
            f"{name} {count}" for name, count in sorted(self.by_system.items())
        )
        lines = [
            f"opsroute demo: dataset {self.dataset}",
            f"  model                 {self.model_version} ({trained})",
            f"  database              {self.database}",
            f"  tickets routed        {self.tickets} of {self.held_out} held out "
            f"({systems})",
            f"  tickets per second    {self.tickets_per_second:,.0f} "
            "(normalize, classify, decide, store)",
            f"  accuracy              {self.accuracy:.4f}",
            f"  macro-F1              {self.macro_f1:.4f}",
            f"  threshold             {self.threshold:.2f}",
            f"  auto-route share      {self.auto_route_share:.4f}",
            f"  auto-route precision  {precision}",
            f"  review share          {self.review_share:.4f}"
            f" (of which forced {self.forced_review_share:.4f})",
            "",
            f"  {'group':<24} {'precision':>9} {'recall':>7} {'F1':>7} {'tickets':>8}",
        ]
        for g in self.groups:
            lines.append(
                f"  {g.group:<24} {g.precision:>9.4f} {g.recall:>7.4f} "
                f"{g.f1:>7.4f} {g.support:>8}"
            )
        if self.threshold_curve:
            lines += ["", "  threshold  auto-route share  precision"]
            for point in self.threshold_curve:
                value = point["precision"]
                shown = "n/a" if value is None else f"{value:.4f}"
                lines.append(
                    f"  {point['threshold']:>9.2f}  {point['share']:>16.4f}  {shown:>9}"
                )
        if self.example_ids:
            lines += ["", "  Look at one decision:"]
            for system, ticket_id in sorted(self.example_ids.items()):
                lines.append(f"    opsroute why {system}:{ticket_id}")
        return "\n".join(lines)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
