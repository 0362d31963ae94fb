"""Inline SVG charts for the metrics page and the report. Pure: no Django, no ORM.

Horizontal bars (one per label, optional link) and a column series (one per period). Labels
are escaped here; the output is safe to mark as HTML."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

BAR_HEIGHT = 22
LABEL_WIDTH = 200
CHART_WIDTH = 640


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    href: str = ""
    note: str = ""  # shown after the value, e.g. "12 of 40"


def _fmt(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{text}{unit}"


def bar_chart(bars: Sequence[Bar], *, title: str, unit: str = "", max_value: float = 0) -> str:
    """Horizontal bars, one per label; an empty series says so instead of drawing nothing."""
    if not bars:
        return (
            f'<svg role="img" aria-label="{escape(title)}: no data" width="{CHART_WIDTH}" '
            f'height="30" class="chart"><text x="0" y="20" fill="#666">No data yet.</text></svg>'
        )
    top = max(max_value, max(b.value for b in bars), 1e-9)
    span = CHART_WIDTH - LABEL_WIDTH - 140
    height = BAR_HEIGHT * len(bars) + 8
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{CHART_WIDTH}" height="{height}" '
        f'viewBox="0 0 {CHART_WIDTH} {height}" class="chart"><title>{escape(title)}</title>'
    ]
    for i, b in enumerate(bars):
        y = i * BAR_HEIGHT + 4
        width = max(1.0, span * b.value / top) if b.value else 0
        label = escape(b.label[:40])
        text = (
            f'<a href="{escape(b.href)}"><text x="0" y="{y + 15}" fill="#1a4d8f" '
            f'text-decoration="underline">{label}</text></a>'
            if b.href
            else f'<text x="0" y="{y + 15}">{label}</text>'
        )
        value = escape(_fmt(b.value, unit) + (f" ({b.note})" if b.note else ""))
        parts.append(
            f"<g>{text}"
            f'<rect x="{LABEL_WIDTH}" y="{y + 2}" width="{width:.1f}" height="{BAR_HEIGHT - 6}" '
            f'fill="#3b6fb6"><title>{label}: {value}</title></rect>'
            f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 15}" font-size="12">'
            f"{value}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def column_chart(points: Sequence[Bar], *, title: str, unit: str = "") -> str:
    """Columns over time (one per period, oldest first)."""
    if not points:
        return bar_chart([], title=title)
    height = 180
    base = height - 30
    top = max(max(p.value for p in points), 1e-9)
    step = (CHART_WIDTH - 40) / len(points)
    width = max(4.0, step * 0.7)
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{CHART_WIDTH}" height="{height}" '
        f'viewBox="0 0 {CHART_WIDTH} {height}" class="chart"><title>{escape(title)}</title>'
        f'<line x1="30" y1="{base}" x2="{CHART_WIDTH}" y2="{base}" stroke="#999"/>'
    ]
    for i, p in enumerate(points):
        h = (base - 20) * p.value / top
        x = 34 + i * step
        value = escape(_fmt(p.value, unit))
        parts.append(
            f'<g><rect x="{x:.1f}" y="{base - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
            f'fill="#3b6fb6"><title>{escape(p.label)}: {value}</title></rect>'
            f'<text x="{x:.1f}" y="{base - h - 4:.1f}" font-size="11">{value}</text>'
            f'<text x="{x:.1f}" y="{base + 14}" font-size="10">{escape(p.label[-5:])}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
