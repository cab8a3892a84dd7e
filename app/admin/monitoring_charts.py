"""The monitoring page's figures over time: data drift per site and model drift against the
model card (from the drift reports' dated copies) and, per day from the database, the review
rate, the correction rate, the answer latency and the label mix. Drawn by
:mod:`app.admin.svg_plots`; the numbers go to the page's tables too.

Definitions (per day of the prediction): *answered* = the model gave an answer (status
``ok``); *review rate* = answered predictions with at least one radiologist review /
answered; *correction rate* = reviewed predictions that some reviewer corrected to another
label / reviewed; *latency* = median and 95th percentile of the answer time (ms) the app
measured; *label mix* = answers per class, refusals (not a chest X-ray) and errors apart.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.admin import svg_plots
from app.platform.metrics import reports_dir
from app.store.db.models import Prediction, Review

DAYS = 30  # days of database figures
REPORTS = 20  # latest data-drift reports drawn
# model-drift metrics (monitoring.model_drift.METRICS) as the chart names them
METRIC_WORDS = {"accuracy": "accuracy", "covid_recall": "COVID recall",
                "normals_called_covid": "normals called COVID"}
STATUS_WORDS = {"not_xray": "refused (not a chest X-ray)", "error": "error"}


@dataclass
class Daily:
    """Per-day figures of the last :data:`DAYS` days (oldest first)."""

    days: list[str] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    review_rate: list[float | None] = field(default_factory=list)
    correction_rate: list[float | None] = field(default_factory=list)
    latency_p50: list[float | None] = field(default_factory=list)
    latency_p95: list[float | None] = field(default_factory=list)
    mix: dict[str, list[int]] = field(default_factory=dict)


def _quantile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def daily(session: Session, now: datetime | None = None, days: int = DAYS) -> Daily:
    """The per-day figures from the predictions and reviews of the last ``days`` days."""
    now = _aware(now or datetime.now(UTC))
    first = (now - timedelta(days=days - 1)).date()
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    preds = session.execute(
        select(Prediction.id, Prediction.created_at, Prediction.status, Prediction.label,
               Prediction.latency_ms)
        .where(Prediction.created_at >= since, Prediction.kind == "analysis")).all()
    verdicts: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for pid, verdict, label in session.execute(
            select(Review.prediction_id, Review.verdict, Review.label)
            .join(Prediction, Prediction.id == Review.prediction_id)
            .where(Prediction.created_at >= since)):
        verdicts[pid].append((verdict, label))
    keys = [first + timedelta(days=i) for i in range(days)]
    per: dict[Any, dict[str, Any]] = {k: {"answered": 0, "reviewed": 0, "corrected": 0,
                                          "latency": [], "mix": Counter()} for k in keys}
    for pid, created, status, label, latency in preds:
        bucket = per.get(_aware(created).date())
        if bucket is None:
            continue
        bucket["mix"][label if status == "ok" and label else
                      STATUS_WORDS.get(status, status)] += 1
        if latency is not None:
            bucket["latency"].append(float(latency))
        if status != "ok":
            continue
        bucket["answered"] += 1
        said = verdicts.get(pid, [])
        if said:
            bucket["reviewed"] += 1
            if any(v == "corrected" and lab and lab != label for v, lab in said):
                bucket["corrected"] += 1
    out = Daily(days=[f"{k.day} {k:%b}" for k in keys])
    names = sorted({n for b in per.values() for n in b["mix"]})
    out.mix = {n: [per[k]["mix"][n] for k in keys] for n in names}
    for k in keys:
        b = per[k]
        out.answered.append(b["answered"])
        out.review_rate.append(b["reviewed"] / b["answered"] if b["answered"] else None)
        out.correction_rate.append(b["corrected"] / b["reviewed"] if b["reviewed"] else None)
        out.latency_p50.append(_quantile(b["latency"], 0.5))
        out.latency_p95.append(_quantile(b["latency"], 0.95))
    return out


def _history(data_dir: Path, kind: str, limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` reports of ``kind`` (the jobs' dated copies under ``history/``,
    ``monitoring.reports.write``), oldest first; unreadable ones are left out."""
    folder = reports_dir(data_dir) / "history"
    reports = []
    for path in sorted(folder.glob(f"*-{kind}-drift.json"))[-limit:]:
        try:
            reports.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return reports


def _label(report: dict[str, Any]) -> str:
    moment = datetime.fromisoformat(report["created_utc"])
    return f"{moment.day} {moment:%b %H:%M}"


def drift_history(data_dir: Path, limit: int = REPORTS
                  ) -> tuple[list[str], dict[str, list[float | None]], float | None]:
    """(report dates, {site: -log10 p per report}, the alarm level in -log10) of the latest
    ``limit`` data-drift reports."""
    reports = _history(data_dir, "data", limit)
    labels, series = [], defaultdict(lambda: [None] * len(reports))
    alpha = None
    for i, report in enumerate(reports):
        labels.append(_label(report))
        alpha = report.get("alpha", alpha)
        for group in report.get("groups", []):
            p = group.get("p_value")
            if group.get("judged") and p is not None:
                series[group["group"]][i] = -math.log10(max(p, 1e-6))
    rule = -math.log10(alpha) if alpha else None
    return labels, dict(sorted(series.items())), rule


def model_drift_history(data_dir: Path, limit: int = REPORTS
                        ) -> tuple[list[str], dict[str, list[float | None]],
                                   dict[str, list[float | None]]]:
    """(report dates, {metric: overall value per report}, {metric: the model card's figure
    per report}) of the latest ``limit`` model-drift reports. A value is drawn only where
    the report judged it (enough validated cases), as the report's own verdict does; the
    card is the yardstick each report tested against (it changes with the production
    version)."""
    reports = _history(data_dir, "model", limit)
    labels = [_label(r) for r in reports]
    values: dict[str, list[float | None]] = {w: [None] * len(reports)
                                             for w in METRIC_WORDS.values()}
    cards: dict[str, list[float | None]] = {w: [None] * len(reports)
                                            for w in METRIC_WORDS.values()}
    for i, report in enumerate(reports):
        overall = next((g for g in report.get("groups", []) if g.get("group") == "overall"),
                       {})
        for key, word in METRIC_WORDS.items():
            m = overall.get("metrics", {}).get(key)
            if m is None:
                continue
            cards[word][i] = m.get("card")
            if m.get("judged") and m.get("value") is not None:
                values[word][i] = m["value"]
    return labels, values, cards


def figures(session: Session, data_dir: Path, now: datetime | None = None) -> dict[str, Any]:
    """Every chart of the page (SVG text, "" when there is nothing to draw) and the
    numbers behind the daily ones."""
    d = daily(session, now)
    labels, sites, rule = drift_history(data_dir)
    model_labels, metrics, cards = model_drift_history(data_dir)
    return {
        "daily": d,
        "drift": svg_plots.lines(
            "Data drift per site over the latest reports: evidence of drift (-log10 p); "
            "above the dashed line the report raised an alarm", labels, sites, top=None,
            rule=rule, rule_label="alarm level"),
        "model_drift": svg_plots.lines(
            "Model drift over the latest reports: accuracy, COVID recall and normals called "
            "COVID on the radiologist-validated cases (all sites); dashed, the model card's "
            "figure each report tested against", model_labels, metrics, unit="%", top=1.0,
            yardsticks=cards, yardstick_label="model card"),
        "review_rate": svg_plots.lines("Share of answers reviewed by a radiologist, per day",
                                       d.days, {"review rate": d.review_rate}, unit="%",
                                       top=1.0),
        "correction_rate": svg_plots.lines(
            "Share of reviewed answers a radiologist corrected, per day", d.days,
            {"correction rate": d.correction_rate}, unit="%", top=1.0),
        "latency": svg_plots.lines("Answer time per day (ms)", d.days,
                                   {"median": d.latency_p50, "95th percentile": d.latency_p95},
                                   unit=" ms"),
        "mix": svg_plots.stacked_bars("Answers per day by label", d.days, d.mix),
    }
