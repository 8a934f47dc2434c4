"""Charts drawn on the server as SVG: no script, no outside library, the same picture in
the browser and in the PDF.

Pure: numbers in, markup out (escaped). Each chart has a ``<title>`` and an
``aria-label`` saying what it shows, and its data as ``data-*`` attributes on the marks
(the page tests compare them with the API's numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

from markupsafe import Markup

PALETTE: Final = ("#c8102e", "#1a7f37", "#0969da", "#9a6700", "#8250df", "#57606a", "#bf3989")
"""Red (the brand), green, blue, amber, purple, grey, pink: told apart in print too."""

FONT: Final = "font-family=\"'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif\""


@dataclass(frozen=True)
class Line:
    """One series of a line chart (None: no value, the line breaks)."""

    name: str
    values: Sequence[float | None]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step * 4:
            return float(step * 4)
    return float(value)


def _open(width: int, height: int, title: str, kind: str) -> list[str]:
    t = escape(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{t}" class="chart chart-{kind}" {FONT}>',
        f"<title>{t}</title>",
    ]


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    out: list[str] = []
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        out.append(
            f'<rect x="{x:.0f}" y="{y - 9:.0f}" width="12" height="12" rx="2" fill="{colour}"/>'
            f'<text x="{x + 17:.0f}" y="{y + 1:.0f}" font-size="13" fill="#1f2328">'
            f"{escape(name)}</text>"
        )
        x += 17 + _text_width(name, 13) + 22
    return out


def _text_width(text: str, size: float) -> float:
    """About how wide ``text`` is drawn: CJK characters are square, Latin about half."""
    return sum(size if ord(ch) > 0x2E80 else size * 0.58 for ch in text)


def _x_labels(labels: Sequence[str], xs: Sequence[float], y: float) -> list[str]:
    every = max(1, (len(labels) + 11) // 12)
    return [
        f'<text x="{x:.1f}" y="{y:.0f}" font-size="12" fill="#5c6670" text-anchor="middle">'
        f"{escape(label)}</text>"
        for i, (label, x) in enumerate(zip(labels, xs, strict=True))
        if i % every == 0 or i == len(labels) - 1
    ]


def line_chart(
    title: str,
    labels: Sequence[str],
    lines: Sequence[Line],
    *,
    percent: bool,
    width: int = 720,
    height: int = 260,
) -> Markup:
    """Lines over buckets (months, weeks): shares (0–1, shown as %) or counts."""
    left, right, top, bottom = 48, 16, 34, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for line in lines for v in line.values if v is not None), default=0.0)
    top_value = 1.0 if percent else _nice_max(peak)
    n = max(1, len(labels))
    xs = [left + (plot_w * (i + 0.5) / n) for i in range(len(labels))]

    def y_of(value: float) -> float:
        return top + plot_h * (1 - value / top_value)

    out = _open(width, height, title, "line")
    out += _legend([line.name for line in lines], left, 16)
    for k in range(5):
        tick = top_value * k / 4
        y = y_of(tick)
        text = f"{tick * 100:.0f}%" if percent else f"{tick:g}"
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#dde1e6" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="12" fill="#5c6670" '
            f'text-anchor="end">{text}</text>'
        )
    for i, line in enumerate(lines):
        colour = PALETTE[i % len(PALETTE)]
        run: list[str] = []
        points: list[tuple[float, float | None]] = [*zip(xs, line.values, strict=True)]
        for x, point in [*points, (0.0, None)]:
            if point is None:
                if len(run) > 1:
                    out.append(
                        f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" '
                        f'points="{" ".join(run)}"/>'
                    )
                run = []
                continue
            run.append(f"{x:.1f},{y_of(point):.1f}")
        for x, value, label in zip(xs, line.values, labels, strict=True):
            if value is None:
                continue
            shown = f"{value * 100:.1f}%" if percent else f"{value:g}"
            out.append(
                f'<circle cx="{x:.1f}" cy="{y_of(value):.1f}" r="3.5" fill="{colour}" '
                f'data-series="{escape(line.name)}" data-bucket="{escape(label)}" '
                f'data-value="{value:.4f}"><title>{escape(line.name)} {escape(label)}: '
                f"{shown}</title></circle>"
            )
    out += _x_labels(labels, xs, height - 8)
    out.append("</svg>")
    return Markup("".join(out))


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Line],
    *,
    width: int = 720,
    height: int = 240,
) -> Markup:
    """Grouped bars of counts per bucket (a station's days)."""
    left, right, top, bottom = 40, 12, 34, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for s in series for v in s.values if v is not None), default=0.0)
    top_value = _nice_max(peak)
    n = max(1, len(labels))
    slot = plot_w / n
    bar = max(1.0, min(14.0, slot * 0.8 / max(1, len(series))))
    out = _open(width, height, title, "bar")
    out += _legend([s.name for s in series], left, 16)
    for k in range(5):
        tick = top_value * k / 4
        y = top + plot_h * (1 - tick / top_value)
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#dde1e6" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="12" fill="#5c6670" '
            f'text-anchor="end">{tick:g}</text>'
        )
    centres = [left + slot * (i + 0.5) for i in range(len(labels))]
    for j, s in enumerate(series):
        colour = PALETTE[j % len(PALETTE)]
        offset = (j - (len(series) - 1) / 2) * bar
        for centre, value, label in zip(centres, s.values, labels, strict=True):
            if not value:
                continue
            h = plot_h * value / top_value
            out.append(
                f'<rect x="{centre + offset - bar / 2:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}" '
                f'data-series="{escape(s.name)}" data-bucket="{escape(label)}" '
                f'data-value="{value:g}"><title>{escape(s.name)} {escape(label)}: {value:g}'
                "</title></rect>"
            )
    out += _x_labels(labels, centres, height - 8)
    out.append("</svg>")
    return Markup("".join(out))


def stars(count: int | None, of: int = 5) -> str:
    """★★★☆☆ (an empty string when there is no rating)."""
    if count is None:
        return ""
    return "★" * count + "☆" * (of - count)
