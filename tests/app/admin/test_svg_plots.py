"""app/admin/svg_plots.py: inline SVG lines and stacked bars, drawn from numbers only."""

from __future__ import annotations

import re

from app.admin import svg_plots


def test_lines_break_at_missing_days_and_scale_percentages():
    svg = svg_plots.lines("Review rate", ["1 Dec", "2 Dec", "3 Dec", "4 Dec", "5 Dec"],
                          {"rate": [0.5, 1.0, None, 0.25, 0.0]}, unit="%", top=1.0)
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 640 220" '
                          'width="100%"')
    assert svg.count("<polyline") == 2  # 1-2 Dec, then 4-5 Dec: no line across the gap
    assert svg.count("<circle") == 4
    assert ">100%</text>" in svg and ">50%</text>" in svg and ">0%</text>" in svg
    assert "<title>rate 4 Dec: 25%</title>" in svg
    # y: the plot spans 12..176 px; 100% at the top, 0% at the bottom
    ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]
    assert ys == [94.0, 12.0, 135.0, 176.0]


def test_lines_escape_names_and_draw_the_rule():
    svg = svg_plots.lines("Drift", ["a"], {"<Site & Co>": [2.0]}, rule=1.3,
                          rule_label="alarm level")
    assert "&lt;Site &amp; Co&gt;" in svg and "<Site" not in svg
    assert 'stroke-dasharray="4"' in svg and ">alarm level</text>" in svg
    assert "style=" not in svg  # the pages' CSP forbids inline styles


def test_nothing_to_draw_is_an_empty_string():
    assert svg_plots.lines("x", [], {}) == ""
    assert svg_plots.lines("x", ["1 Dec"], {"a": [None]}) == ""
    assert svg_plots.stacked_bars("x", ["1 Dec"], {"a": [0]}) == ""


def test_stacked_bars_heights_follow_the_counts():
    svg = svg_plots.stacked_bars("Mix", ["1 Dec", "2 Dec"],
                                 {"COVID": [1, 0], "Normal": [3, 2]})
    bars = re.findall(r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" '
                      r'fill="(#\w+)"><title>([^<]+)</title>', svg)
    heights = {title: float(h) for _, h, _, title in bars}
    assert set(heights) == {"1 Dec COVID: 1", "1 Dec Normal: 3", "2 Dec Normal: 2"}
    # the tallest bar (4) is 1/1.1 of the 164 px plot: 37.3 px per image
    assert heights == {"1 Dec COVID: 1": 37.3, "1 Dec Normal: 3": 111.8,
                       "2 Dec Normal: 2": 74.5}
    assert ">COVID</text>" in svg and ">Normal</text>" in svg  # the legend
