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


def test_the_page_draws_every_chart(make_app, data_dir):
    app = make_app(mlflow_url="http://127.0.0.1:9")
    accounts.add_user(app, "boss", "admin")
    client = app.test_client()
    accounts.login(client, "boss")
    empty = client.get("/admin/monitoring").get_data(as_text=True)
    assert empty.count("Nothing to draw yet") == 5 and "<svg" not in empty
    now = datetime.now(UTC)
    _fill(app, now)
    _drift_report(reports_dir(data_dir), "2026-12-06T02:00:00+00:00", [("Site A", 0.001)])
    page = client.get("/admin/monitoring").get_data(as_text=True)
    day5, day6 = (now - timedelta(days=2)), (now - timedelta(days=1))
    for key in ("drift", "review_rate", "correction_rate", "latency", "mix"):
        figure = page[page.index(f'id="chart-{key}"'):]
        assert figure[:figure.index("</figure>")].count("<svg") == 1, key
    # the numbers behind them, for whoever cannot read a chart (only days with answers)
    page = re.sub(r">\s+<", "><", page)
    assert f"<td>{day5.day} {day5:%b}</td><td>4</td><td>50.0%</td><td>50.0%</td>" in page
    assert f"<td>{day6.day} {day6:%b}</td><td>1</td><td>100.0%</td><td>0.0%</td>" in page
