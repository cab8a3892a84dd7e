"""app/admin/monitoring_charts.py and the Monitoring page's charts: daily review and correction
rates, latency and label mix from the database; data drift per site from the reports."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import accounts

from app.admin import monitoring_charts
from app.platform.metrics import reports_dir
from app.store.db import web as dbweb
from app.store.db.models import Prediction, Review
from monitoring import reports

NOW = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)


def _pred(pid: str, when: datetime, status: str = "ok", label: str | None = "Normal",
          latency: float | None = 100.0) -> Prediction:
    return Prediction(id=pid.ljust(32, "0"), created_at=when,
                      image_sha256=pid.ljust(64, "0"), image_format="PNG", image_bytes=1,
                      status=status, label=label if status == "ok" else None,
                      kind="contribution" if status == "contributed" else "analysis",
                      latency_ms=latency)


def _fill(app, now: datetime = NOW) -> None:
    """Answers two days and one day before ``now`` (5 and 6 Dec for :data:`NOW`)."""
    day5 = now.replace(hour=10) - timedelta(days=2)
    day6 = day5 + timedelta(days=1)
    rad = accounts.add_user(app, "rad", "radiologist")
    with app.app_context():
        s = dbweb.session()
        s.add_all([
            # 5 Dec: four answers, two reviewed, one of them corrected to another label
            _pred("a1", day5, latency=100), _pred("a2", day5, latency=200),
            _pred("a3", day5, label="COVID", latency=300), _pred("a4", day5, latency=1000),
            _pred("a5", day5, status="not_xray", latency=50),
            _pred("a6", day5, status="contributed", latency=None),  # not an answer: left out
            # 6 Dec: one answer, reviewed: validated
            _pred("b1", day6, label="COVID", latency=400),
            # 67 days before: outside the 30 days
            _pred("c1", day5 - timedelta(days=65), latency=9999.0),
        ])
        s.flush()
        s.add_all([
            Review(prediction_id="a1".ljust(32, "0"), reviewer_id=rad, verdict="corrected",
                   label="COVID"),
            Review(prediction_id="a3".ljust(32, "0"), reviewer_id=rad, verdict="validated",
                   label="COVID"),
            Review(prediction_id="b1".ljust(32, "0"), reviewer_id=rad, verdict="validated",
                   label="COVID"),
        ])
        s.commit()


def test_daily_figures(make_app):
    app = make_app(mlflow_url="http://127.0.0.1:9")
    _fill(app)
    with app.app_context():
        d = monitoring_charts.daily(dbweb.session(), NOW)
    assert len(d.days) == 30 and d.days[0] == "8 Nov" and d.days[-1] == "7 Dec"
    i5, i6 = d.days.index("5 Dec"), d.days.index("6 Dec")
    assert (d.answered[i5], d.answered[i6], sum(d.answered)) == (4, 1, 5)
    assert (d.review_rate[i5], d.review_rate[i6]) == (0.5, 1.0)
    assert (d.correction_rate[i5], d.correction_rate[i6]) == (0.5, 0.0)
    assert d.review_rate[d.days.index("7 Dec")] is None  # no answer that day: no rate
    # 50 (the refusal), 100, 200, 300, 1000 ms
    assert (d.latency_p50[i5], d.latency_p95[i5]) == (200.0, 1000.0)
    assert d.mix == {"COVID": [0] * 27 + [1, 1, 0], "Normal": [0] * 27 + [3, 0, 0],
                     "refused (not a chest X-ray)": [0] * 27 + [1, 0, 0]}


def _drift_report(folder, when: str, groups: list[tuple[str, float | None]]) -> None:
    report = reports.new_report(
        "data", drift=False, summary="s", model_version="10", window="w", alpha=0.01,
        method="m", groups=[{"group": g, "n": 20, "judged": p is not None, "drift": False,
                             "p_value": p} for g, p in groups])
    report["created_utc"] = when
    reports.write(folder, report, "<svg/>")


def test_drift_history_per_site(make_app, data_dir):
    folder = reports_dir(data_dir)
    _drift_report(folder, "2026-12-05T02:00:00+00:00", [("Site A", 0.1), ("Site B", None)])
    _drift_report(folder, "2026-12-06T02:00:00+00:00", [("Site A", 0.001), ("Site B", 0.5)])
    labels, sites, rule = monitoring_charts.drift_history(data_dir)
    assert labels == ["5 Dec 02:00", "6 Dec 02:00"]
    assert sites["Site A"] == [1.0, 3.0] and sites["Site B"][0] is None
    assert round(sites["Site B"][1], 3) == 0.301 and rule == 2.0


def _metric(value: float, card: float, judged: bool = True, worse: bool = False) -> dict:
    return {"value": value, "low": value - 0.1, "high": min(value + 0.1, 1.0), "n": 40,
            "card": card, "judged": judged, "worse": worse, "better": False,
            "p_value": 0.5 if judged else None}


def _model_report(folder, when: str, card: dict[str, float],
                  overall: dict[str, tuple[float, bool]], site: float = 0.5) -> None:
    """A model-drift report as the job writes it: the overall group's metrics (value,
    judged) against ``card``, and a site whose figures must not be drawn as the overall."""
    metrics = {k: _metric(v, card[k], judged) for k, (v, judged) in overall.items()}
    report = reports.new_report(
        "model", drift=False, summary="s", model_version="10", window="w", card=card,
        alpha=0.05, method="m", groups=[
            {"group": "overall", "n": 40, "drift": False, "judged": True, "metrics": metrics},
            {"group": "Site A", "n": 20, "drift": False, "judged": True,
             "metrics": {k: _metric(site, card[k]) for k in card}}])
    report["created_utc"] = when
    reports.write(folder, report, "<svg/>")


def _model_reports(folder) -> None:
    # version 10's card, then version 11's (accuracy 0.90): each report's own yardstick
    _model_report(folder, "2026-12-05T02:00:00+00:00",
                  {"accuracy": 0.92, "covid_recall": 0.85, "normals_called_covid": 0.05},
                  {"accuracy": (0.9, True), "covid_recall": (0.8, True),
                   "normals_called_covid": (0.1, False)})  # too few normals: not drawn
    _model_report(folder, "2026-12-06T02:00:00+00:00",
                  {"accuracy": 0.90, "covid_recall": 0.85, "normals_called_covid": 0.05},
                  {"accuracy": (0.75, True), "covid_recall": (0.6, True),
                   "normals_called_covid": (0.25, True)})


def test_model_drift_history_draws_the_recorded_runs_against_the_card(make_app, data_dir):
    _model_reports(reports_dir(data_dir))
    labels, values, cards = monitoring_charts.model_drift_history(data_dir)
    assert labels == ["5 Dec 02:00", "6 Dec 02:00"]
    assert values == {"accuracy": [0.9, 0.75], "COVID recall": [0.8, 0.6],
                      "normals called COVID": [None, 0.25]}
    assert cards == {"accuracy": [0.92, 0.9], "COVID recall": [0.85, 0.85],
                     "normals called COVID": [0.05, 0.05]}
    app = make_app(mlflow_url="http://127.0.0.1:9")
    with app.app_context():
        svg = monitoring_charts.figures(dbweb.session(), data_dir)["model_drift"]
    # The points: the runs' values on a 0-100% axis (the plot spans y 12..176 px).
    points = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="2.5" fill="#\w+"><title>'
                        r'([^<]+)</title>', svg)
    assert [(title, float(cy)) for _, cy, title in points] == [
        ("accuracy 5 Dec 02:00: 90%", 28.4), ("accuracy 6 Dec 02:00: 75%", 53.0),
        ("COVID recall 5 Dec 02:00: 80%", 44.8), ("COVID recall 6 Dec 02:00: 60%", 77.6),
        ("normals called COVID 6 Dec 02:00: 25%", 135.0)]
    # The yardstick: each report's card figure, dashed, a step where the card changed.
    dashed = re.findall(r'<polyline points="([^"]+)" fill="none" stroke="#\w+" '
                        r'stroke-width="1.5" stroke-dasharray="5 3"><title>([^<]+)</title>', svg)
    assert dashed[:2] == [("48.0,25.1 338.0,25.1 338.0,28.4", "accuracy: model card"),
                          ("338.0,28.4 628.0,28.4", "accuracy: model card")]
    assert ("48.0,36.6 338.0,36.6", "COVID recall: model card") in dashed
    assert ">model card</text>" in svg and "Site A" not in svg


def test_the_page_draws_every_chart(make_app, data_dir):
    app = make_app(mlflow_url="http://127.0.0.1:9")
    accounts.add_user(app, "boss", "admin")
    client = app.test_client()
    accounts.login(client, "boss")
    empty = client.get("/admin/monitoring").get_data(as_text=True)
    assert empty.count("Nothing to draw yet") == 6 and "<svg" not in empty
    now = datetime.now(UTC)
    _fill(app, now)
    _drift_report(reports_dir(data_dir), "2026-12-06T02:00:00+00:00", [("Site A", 0.001)])
    _model_reports(reports_dir(data_dir))
    page = client.get("/admin/monitoring").get_data(as_text=True)
    day5, day6 = (now - timedelta(days=2)), (now - timedelta(days=1))
    for key in ("drift", "model_drift", "review_rate", "correction_rate", "latency", "mix"):
        figure = page[page.index(f'id="chart-{key}"'):]
        assert figure[:figure.index("</figure>")].count("<svg") == 1, key
    # the numbers behind them, for whoever cannot read a chart (only days with answers)
    page = re.sub(r">\s+<", "><", page)
    assert f"<td>{day5.day} {day5:%b}</td><td>4</td><td>50.0%</td><td>50.0%</td>" in page
    assert f"<td>{day6.day} {day6:%b}</td><td>1</td><td>100.0%</td><td>0.0%</td>" in page
