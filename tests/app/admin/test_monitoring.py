"""app/admin/monitoring.py: the admin's monitoring page shows the latest reports' figures.

The reports are made by the monitoring package's own code (``monitoring.drift``,
``monitoring.model_drift``, ``monitoring.reports``) on synthetic windows and cases, and
written where the jobs write them; the page must show what they say: verdicts, groups,
sizes, p-values, intervals against the card, and the full HTML with its figure.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime

import accounts
import numpy as np
import pytest

from monitoring import drift, model_drift, reports

CARD = {"accuracy": 0.83, "covid_recall": 0.84, "normals_called_covid": 0.05}


def data_report() -> tuple[dict, str]:
    """A data-drift report: site "Hospital B" shifted, "Hospital A" not, "Clinic C" tiny."""
    rng = np.random.default_rng(3)
    ref = drift.Window(rng.normal(size=(120, 4)), np.array(["train"] * 120))
    current = np.concatenate([rng.normal(size=(40, 4)), rng.normal(1.5, 1, size=(40, 4)),
                              rng.normal(size=(4, 4))])
    groups = np.array(["Hospital A"] * 40 + ["Hospital B"] * 40 + ["Clinic C"] * 4)
    results = drift.compare(ref, drift.Window(current, groups), ["pc1", "pc2", "mean", "std"],
                            permutations=200)
    report = reports.new_report(
        "data", drift=any(r.drift for r in results), summary=drift.summary(results),
        model_version="3", window="last 7 days", alpha=0.05, method="MMD",
        groups=drift.as_dicts(results), notes=[])
    return report, reports.p_value_figure(report["groups"], 0.05)


def model_report() -> tuple[dict, str]:
    """A model-drift report: "Hospital B" misses most COVID cases, "Hospital A" does not."""
    cases = ([model_drift.Case("Hospital A", "COVID", "COVID")] * 30
             + [model_drift.Case("Hospital A", "Normal", "Normal")] * 30
             + [model_drift.Case("Hospital B", "Normal", "COVID")] * 25
             + [model_drift.Case("Hospital B", "COVID", "COVID")] * 5)
    results = model_drift.evaluate(cases, CARD)
    report = reports.new_report(
        "model", drift=any(r.drift for r in results), summary=model_drift.summary(results),
        model_version="3", window="last 90 days", card=CARD, method="Wilson",
        groups=model_drift.as_dicts(results), notes=[])
    return report, reports.interval_figure(report["groups"])


@pytest.fixture()
def app(make_app):
    app = make_app()
    accounts.add_user(app, "boss", "admin")
    accounts.add_user(app, "doc", "clinician")
    return app


def admin_client(app):
    client = app.test_client()
    assert accounts.login(client, "boss").status_code == 302
    return client


def section(page: str, kind: str) -> str:
    """The HTML of one report's section of the page."""
    match = re.search(rf'<section class="panel" id="{kind}-drift">(.*?)</section>', page, re.S)
    assert match, page
    return html.unescape(match[1])


def rows(part: str) -> dict[str, list[str]]:
    """{group: [cells...]} of a section's table, tags stripped."""
    out = {}
    for row in re.findall(r"<tr><td>(.*?)</tr>", part, re.S):
        cells = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c)).strip()
                 for c in re.split(r"</td>\s*<td>", "<td>" + row)]
        cells[0] = cells[0].removeprefix("<td>").strip()
        out[cells[0]] = cells
    return out


def test_page_shows_the_latest_reports_figures(app, data_dir) -> None:
    folder = data_dir / "monitoring"
    data, data_fig = data_report()
    model, model_fig = model_report()
    reports.write(folder, data, data_fig)
    reports.write(folder, model, model_fig)
    # What the page must show, from the reports themselves.
    by_group = {g["group"]: g for g in data["groups"]}
    assert by_group["Hospital B"]["drift"] and not by_group["Hospital A"]["drift"]
    assert not by_group["Clinic C"]["judged"]

    page = admin_client(app).get("/admin/monitoring")
    assert page.status_code == 200
    text = page.get_data(as_text=True)

    part = section(text, "data")
    assert "DRIFT" in part and data["summary"] in part
    made = datetime.fromisoformat(data["created_utc"])  # shown as a person reads a date
    assert f"Made {made.day} {made:%b %Y, %H:%M} UTC" in part
    assert "model 3" in part and "last 7 days" in part
    table = rows(part)
    assert set(table) == set(by_group)
    for name, g in by_group.items():
        n, verdict, details = table[name][1:4]
        assert n == str(g["n"])
        if not g["judged"]:
            assert verdict == "too few to judge" and details == ""
        else:
            assert verdict == ("drift" if g["drift"] else "ok")
            # the one reference source ("train"); no patient ids: films permuted one by one
            assert details == (f"p = {g['p_value']:.3f} \u00b7 resembles train \u00b7 films "
                               "permuted one by one")

    part = section(text, "model")
    assert "DRIFT" in part and model["summary"] in part
    table = rows(part)
    b = next(g for g in model["groups"] if g["group"] == "Hospital B")
    recall = b["metrics"]["covid_recall"]
    assert recall["worse"]  # 5 of 30 COVID cases found, against a card of 0.84
    shown = (f"covid_recall {recall['value']:.2f} [{recall['low']:.2f}, {recall['high']:.2f}]"
             f" vs card {recall['card']:.2f} worse")
    assert shown in table["Hospital B"][3]
    a = next(g for g in model["groups"] if g["group"] == "Hospital A")
    assert not any(m.get("worse") for m in a["metrics"].values())
    assert "worse" not in table["Hospital A"][3]

    # The full reports, as the job wrote them, with their figures; nothing in them may run.
    for kind, figure in (("data", data_fig), ("model", model_fig)):
        assert f'href="/admin/monitoring/{kind}.html"' in text
        full = admin_client(app).get(f"/admin/monitoring/{kind}.html")
        assert full.status_code == 200
        body = full.get_data(as_text=True)
        assert figure in body and "<script" not in body
        assert full.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_page_follows_the_latest_report(app, data_dir) -> None:
    """A newer report replaces the older one on the page (the jobs rewrite latest-*)."""
    folder = data_dir / "monitoring"
    data, fig = data_report()
    reports.write(folder, data, fig)
    calm = dict(data, drift=False, summary="no drift in any group (test)",
                groups=[g for g in data["groups"] if g["group"] == "Hospital A"],
                created_utc="2030-01-01T00:00:00+00:00")
    reports.write(folder, calm, reports.p_value_figure(calm["groups"], 0.05))
    part = section(admin_client(app).get("/admin/monitoring").get_data(as_text=True), "data")
    assert "No drift" in part and "no drift in any group (test)" in part
    assert "Made 1 Jan 2030, 00:00 UTC" in part
    assert set(rows(part)) == {"Hospital A"}


def test_no_report_or_an_unreadable_one_says_the_job_has_not_run(app, data_dir) -> None:
    client = admin_client(app)
    page = client.get("/admin/monitoring").get_data(as_text=True)
    for kind in ("data", "model"):
        assert "No report yet" in section(page, kind)
    assert client.get("/admin/monitoring/data.html").status_code == 404
    folder = data_dir / "monitoring"
    folder.mkdir(parents=True)
    (folder / "latest-model-drift.json").write_text("{not json")
    page = client.get("/admin/monitoring")
    assert page.status_code == 200
    assert "No report yet" in section(page.get_data(as_text=True), "model")


def test_clinicians_do_not_see_the_reports(app, data_dir) -> None:
    data, fig = data_report()
    reports.write(data_dir / "monitoring", data, fig)
    client = app.test_client()
    assert accounts.login(client, "doc").status_code == 302
    for path in ("/admin/monitoring", "/admin/monitoring/data.html"):
        resp = client.get(path)
        assert resp.status_code == 403
        assert data["summary"] not in resp.get_data(as_text=True)
    assert json.loads((data_dir / "monitoring" / "latest-data-drift.json").read_text())
