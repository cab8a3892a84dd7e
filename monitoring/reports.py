"""Drift reports: a JSON the app and Prometheus read, a short HTML with SVG figures, and
a run in MLflow (experiment ``radio-monitoring``) holding both.

Files in the reports folder (``app.platform.metrics.reports_dir``): ``latest-<kind>-drift.json`` and
``.html`` (replaced atomically), and a dated copy of each under ``history/``. Figures are
drawn as SVG by hand: no plotting library on the hosts.
"""

from __future__ import annotations

import html
import json
import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_W, _ROW = 640, 26


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _size(height: int) -> str:
    # viewBox: the page's CSS shrinks the figure to a phone's width instead of overflowing it
    return f'viewBox="0 0 {_W} {height}" width="{_W}" height="{height}"'


def p_value_figure(groups: list[dict[str, Any]], alpha: float) -> str:
    """Bars of -log10(p) per group, with the alpha line: longer bar = stronger evidence."""
    judged = [g for g in groups if g.get("judged")]
    top = max([3.0] + [-math.log10(max(g["p_value"], 1e-6)) for g in judged])
    height = _ROW * len(judged) + 40
    scale = (_W - 220) / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" {_size(height)} '
             'font-family="sans-serif" font-size="12">']
    for i, g in enumerate(judged):
        y = 10 + i * _ROW
        width = -math.log10(max(g["p_value"], 1e-6)) * scale
        colour = "#c0392b" if g["drift"] else "#2e86c1"
        parts.append(f'<text x="0" y="{y + 14}">{html.escape(g["group"])}</text>'
                     f'<rect x="200" y="{y}" width="{width:.1f}" height="18" fill="{colour}"/>'
                     f'<text x="{205 + width:.1f}" y="{y + 14}">p={g["p_value"]:.3f}</text>')
    ax = 200 + -math.log10(alpha) * scale
    parts.append(f'<line x1="{ax:.1f}" y1="0" x2="{ax:.1f}" y2="{height - 20}" stroke="#000" '
                 f'stroke-dasharray="4"/><text x="{ax + 3:.1f}" y="{height - 5}">'
                 f'alpha={alpha}</text></svg>')
    return "".join(parts)


def interval_figure(groups: list[dict[str, Any]]) -> str:
    """Each metric's 95% interval per group on [0, 1], the card's figure as a black tick."""
    rows = [(g["group"], name, m) for g in groups for name, m in g["metrics"].items()
            if m["judged"]]
    height = _ROW * len(rows) + 20
    x0, span = 260, _W - 280
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" {_size(height)} '
             'font-family="sans-serif" font-size="12">']
    for i, (group, name, m) in enumerate(rows):
        y = 10 + i * _ROW
        colour = "#c0392b" if m["worse"] else "#2e86c1"
        parts.append(
            f'<text x="0" y="{y + 12}">{html.escape(group)} {name}</text>'
            f'<line x1="{x0 + m["low"] * span:.1f}" y1="{y + 8}" x2="{x0 + m["high"] * span:.1f}"'
            f' y2="{y + 8}" stroke="{colour}" stroke-width="6"/>'
            f'<circle cx="{x0 + m["value"] * span:.1f}" cy="{y + 8}" r="4" fill="#000"/>')
        if m["card"] is not None:
            cx = x0 + m["card"] * span
            parts.append(f'<line x1="{cx:.1f}" y1="{y}" x2="{cx:.1f}" y2="{y + 16}" '
                         'stroke="#000" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict[str, Any], figure: str) -> str:
    """The report as one self-contained HTML page (no script, no external resource)."""
    title = "Data drift" if report["kind"] == "data" else "Model drift on validated cases"
    rows = "".join(
        f"<tr><td>{html.escape(g['group'])}</td><td>{g['n']}</td><td>"
        f"{'too few to judge' if not g['judged'] else 'DRIFT' if g['drift'] else 'ok'}</td>"
        f"<td>{html.escape(_details(g))}</td></tr>" for g in report["groups"])
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.get("notes", []))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Radio: {title}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<style>body{font-family:sans-serif;max-width:900px;margin:1em auto;padding:0 8px}"
        "svg{max-width:100%;height:auto}.wrap{overflow-x:auto}"
        "td,th{padding:2px 8px;text-align:left}</style></head><body>"
        f"<h1>{title}</h1><p><strong>{html.escape(report['summary'])}</strong></p>"
        f"<p>Made {report['created_utc']}; model version {html.escape(report['model_version'])}"
        f"; window {html.escape(report['window'])}; method: {html.escape(report['method'])}.</p>"
        f"{figure}<div class='wrap'><table><tr><th>Group</th><th>n</th><th>Verdict</th>"
        f"<th>Details</th></tr>{rows}</table></div><ul>{notes}</ul></body></html>")


def _details(group: dict[str, Any]) -> str:
    if "metrics" in group:
        return "; ".join(
            f"{k} {m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}] card "
            f"{'n/a' if m['card'] is None else format(m['card'], '.3f')}"
            f"{' WORSE' if m['worse'] else ''}"
            for k, m in group["metrics"].items() if m["judged"])
    moved = ", ".join(f"{m['feature']} ({m['shift_sd']:+.2f} sd)" for m in group.get("moved", []))
    p = group.get("p_value")
    like = f"; resembles {group['resembles']}" if group.get("resembles") else ""
    units = f"; {group['permuted']} permuted" if group.get("permuted") and p is not None else ""
    return ((f"p={p:.4f}" if p is not None else "") + like + units
            + (f"; moved: {moved}" if moved else ""))


def new_report(kind: str, **fields: Any) -> dict[str, Any]:
    """The common fields of a report."""
    now = time.time()
    return {"kind": kind, "created_unix": now,
            "created_utc": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
            **fields}


def write(folder: Path, report: dict[str, Any], figure: str) -> dict[str, Path]:
    """Write the latest JSON and HTML (atomically) and their dated copies."""
    folder = Path(folder)
    (folder / "history").mkdir(parents=True, exist_ok=True)
    kind = report["kind"]
    page = render_html(report, figure)
    text = json.dumps(report, indent=1, default=float)
    stamp = report["created_utc"].replace(":", "")
    paths = {"json": folder / f"latest-{kind}-drift.json",
             "html": folder / f"latest-{kind}-drift.html",
             "svg": folder / "history" / f"{stamp}-{kind}-drift.svg"}
    for suffix, content in (("json", text), ("html", page)):
        _atomic(paths[suffix], content)
        (folder / "history" / f"{stamp}-{kind}-drift.{suffix}").write_text(content)
    paths["svg"].write_text(figure)
    return paths


def log_to_mlflow(report: dict[str, Any], paths: dict[str, Path],
                  experiment: str = "radio-monitoring") -> str | None:
    """A run with the report's figures as metrics and its files as artefacts; the run id,
    or None when no tracking server is configured (MLFLOW_TRACKING_URI unset)."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    import mlflow

    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"{report['kind']}-drift {report['created_utc']}") as run:
        mlflow.set_tags({"kind": report["kind"], "model_version": report["model_version"],
                         "drift": str(report["drift"]).lower()})
        for g in report["groups"]:
            key = "".join(c if c.isalnum() or c in "-_." else "_" for c in g["group"])
            if g.get("p_value") is not None:
                mlflow.log_metric(f"p_value.{key}", g["p_value"])
            for name, m in g.get("metrics", {}).items():
                if m["value"] is not None:
                    mlflow.log_metric(f"{name}.{key}", m["value"])
        for path in paths.values():
            mlflow.log_artifact(str(path))
        return run.info.run_id
