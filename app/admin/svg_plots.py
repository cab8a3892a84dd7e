"""Small charts drawn on the server as inline SVG: lines over days and stacked bars.

No plotting library and no script: the pages' Content-Security-Policy allows neither
inline styles nor remote code, so every colour is an SVG presentation attribute. A chart
scales to its container (``viewBox``, ``width="100%"``): no horizontal overflow on a phone.
Each has a ``<title>`` and a legend in words, and the page keeps the numbers in a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

W, H = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 44
PALETTE = ("#2e86c1", "#c0392b", "#27ae60", "#8e44ad", "#d68910", "#17a589", "#5d6d7e",
           "#a04000")


def colour(i: int) -> str:
    """The i-th series colour (cycled)."""
    return PALETTE[i % len(PALETTE)]


def _open(title: str, height: int) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" '
            f'width="100%" role="img" aria-label="{escape(title)}" font-family="sans-serif" '
            f'font-size="11"><title>{escape(title)}</title>']


def _y(value: float, top: float, plot_h: float) -> float:
    return TOP + plot_h - (value / top) * plot_h if top > 0 else TOP + plot_h


def _axes(parts: list[str], labels: Sequence[str], top: float, plot_h: float,
          unit: str) -> float:
    """Axes, ticks and x labels (at most 8); the x step between categories."""
    plot_w = W - LEFT - RIGHT
    step = plot_w / max(len(labels), 1)
    for frac in (0.0, 0.5, 1.0):
        y = _y(top * frac, top, plot_h)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" '
                     f'stroke="#d0d7de"/><text x="{LEFT - 4}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{_fmt(top * frac, unit)}</text>')
    every = max(1, -(-len(labels) // 8))
    for i, label in enumerate(labels):
        if i % every == 0:
            x = LEFT + step * (i + 0.5)
            parts.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 14}" '
                         f'text-anchor="middle">{escape(label)}</text>')
    return step


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.0f}%"
    return f"{value:.0f}{unit}" if value >= 10 or value == 0 else f"{value:.2g}{unit}"


def _legend(parts: list[str], names: Sequence[str], y: float) -> None:
    x = LEFT
    for i, name in enumerate(names):
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour(i)}"/>'
                     f'<text x="{x + 14}" y="{y}">{escape(name)}</text>')
        x += 24 + 7 * len(name)


def _dashed(parts: list[str], points: Sequence[float | None], step: float, top: float,
            plot_h: float, colour_: str, name: str) -> None:
    """A series' yardstick (e.g. the model card's figure per report) as a dashed line."""
    for j, v in enumerate(points):
        if v is None:
            continue
        x, y = LEFT + step * j, _y(min(v, top), top, plot_h)
        nxt = points[j + 1] if j + 1 < len(points) else None
        # a step per category: flat across it, joined to the next level when it changes
        parts.append(f'<polyline points="{x:.1f},{y:.1f} {x + step:.1f},{y:.1f}'
                     + (f' {x + step:.1f},{_y(min(nxt, top), top, plot_h):.1f}'
                        if nxt is not None and nxt != v else "")
                     + f'" fill="none" stroke="{colour_}" stroke-width="1.5" '
                     f'stroke-dasharray="5 3"><title>{escape(name)}</title></polyline>')


def lines(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]],
          unit: str = "", top: float | None = None, rule: float | None = None,
          rule_label: str = "", yardsticks: dict[str, Sequence[float | None]] | None = None,
          yardstick_label: str = "") -> str:
    """One line per series over ``labels`` (None = no value that day: a gap); ``unit`` "%"
    shows fractions as percentages; ``rule`` draws a dashed reference line; ``yardsticks``
    (series name -> a value per label) draws each series' own reference, dashed in its
    colour, named ``yardstick_label`` in the legend."""
    values = [v for s in series.values() for v in s if v is not None]
    if not labels or not values:
        return ""
    yardsticks = yardsticks or {}
    marks = [v for s in yardsticks.values() for v in s if v is not None]
    top = top if top is not None else max(max(values), rule or 0.0, *marks) * 1.1 or 1.0
    plot_h = H - TOP - BOTTOM
    parts = _open(title, H)
    step = _axes(parts, labels, top, plot_h, unit)
    if rule is not None:
        y = _y(rule, top, plot_h)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" '
                     f'stroke="#000" stroke-dasharray="4"/><text x="{W - RIGHT}" '
                     f'y="{y - 3:.1f}" text-anchor="end">{escape(rule_label)}</text>')
    for i, (name, points) in enumerate(series.items()):
        if name in yardsticks:
            _dashed(parts, yardsticks[name], step, top, plot_h, colour(i),
                    f"{name}: {yardstick_label}")
        runs: list[list[str]] = [[]]
        for j, v in enumerate(points):
            if v is None:
                runs.append([])
                continue
            x, y = LEFT + step * (j + 0.5), _y(min(v, top), top, plot_h)
            runs[-1].append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour(i)}">'
                         f'<title>{escape(name)} {escape(labels[j])}: {_fmt(v, unit)}'
                         '</title></circle>')
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline points="{" ".join(run)}" fill="none" '
                             f'stroke="{colour(i)}" stroke-width="2"/>')
    _legend(parts, list(series), H - 6)
    if yardsticks:  # after the names, at the right: "- - - <what the dashes are>"
        x = W - RIGHT - 7 * len(yardstick_label) - 30
        parts.append(f'<line x1="{x}" y1="{H - 10}" x2="{x + 22}" y2="{H - 10}" '
                     f'stroke="#000" stroke-dasharray="5 3"/><text x="{x + 26}" '
                     f'y="{H - 6}">{escape(yardstick_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_bars(title: str, labels: Sequence[str], series: dict[str, Sequence[int]]) -> str:
    """Counts per category stacked in one bar per label (e.g. answers per day by class)."""
    totals = [sum(s[j] for s in series.values()) for j in range(len(labels))]
    if not labels or not any(totals):
        return ""
    top = max(totals) * 1.1
    plot_h = H - TOP - BOTTOM
    parts = _open(title, H)
    step = _axes(parts, labels, top, plot_h, "")
    width = max(step * 0.7, 1.0)
    for j in range(len(labels)):
        base = 0.0
        x = LEFT + step * j + (step - width) / 2
        for i, (name, counts) in enumerate(series.items()):
            if counts[j]:
                y0, y1 = _y(base, top, plot_h), _y(base + counts[j], top, plot_h)
                parts.append(f'<rect x="{x:.1f}" y="{y1:.1f}" width="{width:.1f}" '
                             f'height="{y0 - y1:.1f}" fill="{colour(i)}"><title>'
                             f'{escape(labels[j])} {escape(name)}: {counts[j]}</title></rect>')
                base += counts[j]
    _legend(parts, list(series), H - 6)
    parts.append("</svg>")
    return "".join(parts)
