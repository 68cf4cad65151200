"""Render the routing report as one self-contained HTML page with inline SVG charts.

The page loads nothing: no scripts, fonts, stylesheets or images from elsewhere, so
it opens offline and can be mailed as one file.
"""

from __future__ import annotations

from html import escape
from typing import Any

from router.analytics.report import TEXT_FIGURES, format_value

WIDTH = 640
HEIGHT = 220
MARGIN = 40
STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1000px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.note { background: #fff4d6; border-left: 4px solid #e0a800; padding: 8px 12px; }
svg text { font-family: sans-serif; font-size: 11px; fill: #333; }
"""


def render_html(report: dict[str, Any]) -> str:
    """Return the report as an HTML document."""
    since = report["since"] or "the first decision"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>opsroute routing report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>opsroute routing report</h1>",
        f"<p>{report['tickets']} tickets first decided since {escape(since)}; "
        f"generated {escape(report['generated_at'])}.</p>",
    ]
    if report["note"]:
        parts.append(f'<p class="note">{escape(report["note"])}</p>')
    parts.append(_summary_table(report))
    weeks = report["by_week"]
    parts += [
        "<h2>First-touch accuracy per week</h2>",
        _line_chart(
            [(week, row["first_touch_accuracy"]) for week, row in weeks.items()],
            maximum=1.0,
            label="first-touch accuracy",
        ),
        "<h2>Transfers per ticket per week</h2>",
        _line_chart(
            [(week, row["transfers_per_ticket"]) for week, row in weeks.items()],
            maximum=None,
            label="transfers per ticket",
        ),
        "<h2>Confidence of first decisions</h2>",
        _histogram(report["confidence_histogram"], threshold=report["threshold"]),
        "<h2>First assignment (rows) against resolving group (columns)</h2>",
        "<p>Blue cells were right at first touch, red cells needed a transfer; "
        "darker means more tickets.</p>",
        _confusion(report["confusion"]),
    ]
    for name in ("resolver_group", "source_system", "intent", "week"):
        title = name.replace("_", " ")
        parts += [f"<h2>By {escape(title)}</h2>", _breakdown(report[f"by_{name}"])]
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary_table(report: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{escape(label)}</td><td>{format_value(report[key], unit)}</td></tr>"
        for key, label, unit in TEXT_FIGURES
    )
    return f"<table>{rows}</table>"


def _breakdown(rows: dict[str, dict[str, Any]]) -> str:
    head = (
        "<tr><th></th><th>tickets</th><th>first-touch accuracy</th>"
        "<th>transfers per ticket</th><th>time to owner p50</th>"
        "<th>review share</th></tr>"
    )
    body = "".join(
        f"<tr><td>{escape(name)}</td><td>{row['tickets']}</td>"
        f"<td>{format_value(row['first_touch_accuracy'], 'share')}</td>"
        f"<td>{format_value(row['transfers_per_ticket'], 'number')}</td>"
        f"<td>{format_value(row['time_to_owner_p50_seconds'], 'seconds')}</td>"
        f"<td>{format_value(row['review_share'], 'share')}</td></tr>"
        for name, row in rows.items()
    )
    return f"<table>{head}{body}</table>"


def _svg(content: list[str], *, width: int = WIDTH, height: int = HEIGHT) -> str:
    return (
        f'<svg width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">'
        + "".join(content)
        + "</svg>"
    )


def _line_chart(
    points: list[tuple[str, float | None]], *, maximum: float | None, label: str
) -> str:
    measured = [(name, value) for name, value in points if value is not None]
    if not measured:
        return f"<p>No {escape(label)} recorded yet.</p>"
    top = maximum or max(value for _, value in measured) or 1.0
    plot_width = WIDTH - 2 * MARGIN
    plot_height = HEIGHT - 2 * MARGIN
    step = plot_width / max(len(points) - 1, 1)
    content = _axes(top)
    coordinates = []
    for index, (name, value) in enumerate(points):
        x = MARGIN + index * step
        # About six labels fit under the axis without overlapping.
        if index % max(1, -(-len(points) // 6)) == 0:
            content.append(
                f'<text x="{x:.1f}" y="{HEIGHT - MARGIN + 15}" '
                f'text-anchor="middle">{escape(name)}</text>'
            )
        if value is None:
            continue
        y = HEIGHT - MARGIN - value / top * plot_height
        coordinates.append(f"{x:.1f},{y:.1f}")
        content.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1f77b4">'
            f"<title>{escape(name)}: {value}</title></circle>"
        )
    content.append(
        f'<polyline points="{" ".join(coordinates)}" fill="none" '
        'stroke="#1f77b4" stroke-width="2"/>'
    )
    return _svg(content)


def _axes(top: float) -> list[str]:
    bottom = HEIGHT - MARGIN
    top_label = f"{top:.0f}" if top == int(top) and top > 1 else f"{top:.2f}"
    return [
        f'<line x1="{MARGIN}" y1="{bottom}" x2="{WIDTH - MARGIN}" y2="{bottom}" '
        'stroke="#888"/>',
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{bottom}" '
        'stroke="#888"/>',
        f'<text x="{MARGIN - 5}" y="{bottom}" text-anchor="end">0</text>',
        f'<text x="{MARGIN - 5}" y="{MARGIN + 4}" text-anchor="end">{top_label}</text>',
    ]


def _histogram(bins: list[dict[str, Any]], *, threshold: float | None) -> str:
    tallest = max((item["tickets"] for item in bins), default=0)
    if tallest == 0:
        return "<p>No decisions recorded yet.</p>"
    plot_width = WIDTH - 2 * MARGIN
    plot_height = HEIGHT - 2 * MARGIN
    bar = plot_width / len(bins)
    content = _axes(float(tallest))
    for index, item in enumerate(bins):
        height = item["tickets"] / tallest * plot_height
        x = MARGIN + index * bar
        content.append(
            f'<rect x="{x + 1:.1f}" y="{HEIGHT - MARGIN - height:.1f}" '
            f'width="{bar - 2:.1f}" height="{height:.1f}" fill="#6baed6">'
            f"<title>{item['low']:.2f}-{item['high']:.2f}: {item['tickets']}</title>"
            "</rect>"
        )
    for value in (0.0, 0.5, 1.0):
        x = MARGIN + value * plot_width
        content.append(
            f'<text x="{x:.1f}" y="{HEIGHT - MARGIN + 15}" '
            f'text-anchor="middle">{value:.1f}</text>'
        )
    if threshold is not None:
        x = MARGIN + threshold * plot_width
        content += [
            f'<line x1="{x:.1f}" y1="{MARGIN - 10}" x2="{x:.1f}" '
            f'y2="{HEIGHT - MARGIN}" stroke="#d62728" stroke-width="2" '
            'stroke-dasharray="5,3"/>',
            f'<text x="{x - 4:.1f}" y="{MARGIN - 14}" text-anchor="end" '
            f'fill="#d62728">threshold {threshold:.2f}</text>',
        ]
    return _svg(content)


def _confusion(table: dict[str, dict[str, int]]) -> str:
    if not table:
        return "<p>No resolved tickets with a first assignment yet.</p>"
    groups = sorted(set(table) | {owner for row in table.values() for owner in row})
    cell = max(14, min(28, 560 // len(groups)))
    label_space = 130
    size = label_space + cell * len(groups) + 10
    largest = max(count for row in table.values() for count in row.values())
    content = []
    for index, group in enumerate(groups):
        y = label_space + index * cell + cell * 0.7
        content.append(
            f'<text x="{label_space - 4}" y="{y:.1f}" '
            f'text-anchor="end">{escape(group[:18])}</text>'
        )
        x = label_space + index * cell + cell * 0.7
        content.append(
            f'<text x="{x:.1f}" y="{label_space - 4}" '
            f'transform="rotate(-60 {x:.1f} {label_space - 4})">'
            f"{escape(group[:18])}</text>"
        )
    for row_index, first in enumerate(groups):
        for column_index, owner in enumerate(groups):
            count = table.get(first, {}).get(owner, 0)
            if not count:
                continue
            shade = 0.15 + 0.85 * count / largest
            colour = "31,119,180" if first == owner else "214,39,40"
            content.append(
                f'<rect x="{label_space + column_index * cell}" '
                f'y="{label_space + row_index * cell}" width="{cell - 1}" '
                f'height="{cell - 1}" fill="rgba({colour},{shade:.2f})">'
                f"<title>{escape(first)} to {escape(owner)}: {count}</title></rect>"
            )
    # The last column label leans right, past the grid, so the width has room for it.
    return _svg(content, width=size + 70, height=size)
