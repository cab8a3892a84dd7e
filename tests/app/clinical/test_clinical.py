"""app/clinical/clinical.py: history filters, the prediction page, reviewing, the queue page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import accounts
import helpers
import pytest
from sqlalchemy import select

from app.store import db, images
from app.store.db import web as dbweb
from app.store.db.models import AuditEntry, Prediction, Review, utcnow


@pytest.fixture()
def site(make_app, db_url):
    app = make_app(mlflow_url="http://127.0.0.1:9", database_url=db_url)
    clin = accounts.add_user(app, "clin", "clinician")
    accounts.add_user(app, "rad", "radiologist")
    png = helpers.synthetic_image("PNG", (64, 64))
    sha = images.store(app.config["RADIO"].data_dir / "images", png, "PNG")
    with app.app_context():
        s = dbweb.session()
        for pid, label, age_days in (("a" * 32, "Normal", 0), ("b" * 32, "COVID", 3)):
            s.add(Prediction(id=pid, user_id=clin, image_sha256=sha, image_format="PNG",
                             image_bytes=len(png), status="ok", label=label,
                             probabilities={"COVID": 0.5, "Normal": 0.5}, confidence=0.5,
                             heatmap=[[0.0, 1.0], [0.5, 0.2]],
                             created_at=utcnow() - timedelta(days=age_days)))
        s.commit()
    return app, png


def _logged_in(app, name):
    client = app.test_client()
    accounts.login(client, name)
    return client


def test_history_filters(site):
    app, _ = site
    client = _logged_in(app, "clin")
    html = client.get("/history").get_data(as_text=True)
    assert "a" * 32 in html and "b" * 32 in html
    html = client.get("/history?label=COVID").get_data(as_text=True)
    assert "b" * 32 in html and "a" * 32 not in html
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    html = client.get(f"/history?from={today}").get_data(as_text=True)
    assert "a" * 32 in html and "b" * 32 not in html
    html = client.get("/history?state=agreed").get_data(as_text=True)
    assert "a" * 32 not in html and "0 predictions" in html


def test_radiologist_corrects_and_everyone_sees_it(site, db_url):
    app, png = site
    rad = _logged_in(app, "rad")
    page = rad.get(f"/predictions/{'a' * 32}").get_data(as_text=True)
    assert 'value="validated"' in page and "data-heatmap" in page
    resp = rad.post(f"/predictions/{'a' * 32}/review", data={
        "verdict": "corrected", "label": "COVID", "comment": "subtle opacities",
        "csrf_token": accounts.csrf_from(page)})
    assert resp.status_code == 302
    clin = _logged_in(app, "clin")
    page = clin.get(f"/predictions/{'a' * 32}").get_data(as_text=True)
    assert "correction to COVID" in page and "subtle opacities" in page
    assert "Corrected by a radiologist to COVID (Radio said Normal)" in page
    assert 'value="validated"' not in page  # clinicians get no review form
    assert clin.get(f"/predictions/{'a' * 32}/image").data == png
    html = clin.get("/history?state=agreed").get_data(as_text=True)
    assert "a" * 32 in html
    assert "Corrected by a radiologist to COVID (Radio said Normal)" in html
    with db.session_scope(db_url) as s:
        review = s.scalars(select(Review)).one()
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "review")).one()
    assert (review.verdict, review.label) == ("corrected", "COVID")
    assert audit.target == "a" * 32 and audit.user_id == review.reviewer_id


def test_invalid_review_is_explained_and_not_stored(site, db_url):
    app, _ = site
    rad = _logged_in(app, "rad")
    page = rad.get(f"/predictions/{'a' * 32}").get_data(as_text=True)
    resp = rad.post(f"/predictions/{'a' * 32}/review", data={
        "verdict": "corrected", "label": "Cat", "csrf_token": accounts.csrf_from(page)},
        follow_redirects=True)
    assert "Choose the correct label" in resp.get_data(as_text=True)
    with db.session_scope(db_url) as s:
        assert s.scalars(select(Review)).first() is None
    assert rad.post(f"/predictions/{'z' * 32}/review", data={
        "verdict": "unknown", "csrf_token": accounts.csrf_from(page)}).status_code == 404


def test_queue_merges_copies_then_saving_lands_on_the_next_case(site):
    app, _ = site
    other = helpers.synthetic_image("PNG", (80, 64))
    sha = images.store(app.config["RADIO"].data_dir / "images", other, "PNG")
    with app.app_context():
        s = dbweb.session()
        s.add(Prediction(id="c" * 32, image_sha256=sha, image_format="PNG",
                         image_bytes=len(other), status="ok", label="COVID", confidence=0.4,
                         needs_review=True, probabilities={"COVID": 0.4, "Normal": 0.6},
                         decision={"covid_threshold": 0.24}, created_at=utcnow()))
        s.add(Prediction(id="d" * 32, image_sha256="f" * 64, image_format="PNG",
                         image_bytes=1, status="not_xray", ood_reason="a knee",
                         created_at=utcnow()))
        s.commit()
    rad = _logged_in(app, "rad")
    html = rad.get("/queue").get_data(as_text=True)
    # The flagged image first; the one image uploaded twice is one entry, shown through its
    # oldest upload (b); the refused knee is not queued.
    assert html.index("c" * 32) < html.index("b" * 32)
    assert "a" * 32 not in html and "d" * 32 not in html and "2 uploads" in html
    assert "<strong>2</strong> images to review" in html
    assert "COVID \u2014 40.0%" in html and "flagged by the model" in html
    page = rad.get(f"/predictions/{'c' * 32}").get_data(as_text=True)
    resp = rad.post(f"/predictions/{'c' * 32}/review", data={
        "verdict": "validated", "comment": "", "then": "queue",
        "csrf_token": accounts.csrf_from(page)})
    assert resp.headers["Location"] == f"/predictions/{'b' * 32}?saved={'c' * 32}"
    html = rad.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Review saved for the case of" in html
    resp = rad.post(f"/predictions/{'b' * 32}/review", data={
        "verdict": "discarded", "comment": "", "then": "queue",
        "csrf_token": accounts.csrf_from(page)})
    assert resp.headers["Location"] == f"/queue?saved={'b' * 32}"
    html = rad.get("/queue").get_data(as_text=True)
    assert "Nothing to review." in html and "b" * 32 not in html
    # The case page no longer shows the red banner once reviewed, and says the state.
    html = rad.get(f"/predictions/{'c' * 32}").get_data(as_text=True)
    assert 'class="flag"' not in html and "Validated by a radiologist: COVID" in html
    assert "above the COVID threshold of 24%" in html


def test_another_users_case_is_an_html_403_for_a_browser_json_for_a_script(site):
    app, _ = site
    accounts.add_user(app, "clin2", "clinician")
    other = _logged_in(app, "clin2")
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    resp = other.get(f"/predictions/{'a' * 32}", headers=browser)
    assert resp.status_code == 403 and resp.mimetype == "text/html"
    assert "Not allowed" in resp.get_data(as_text=True)
    resp = other.get(f"/predictions/{'a' * 32}", headers={"Accept": "application/json"})
    assert resp.status_code == 403 and resp.is_json
    resp = other.get(f"/predictions/{'9' * 32}", headers=browser)
    assert resp.status_code == 404 and "Page not found" in resp.get_data(as_text=True)


def test_history_pages_and_says_when_filters_match_nothing(site):
    app, _ = site
    with app.app_context():
        s = dbweb.session()
        for i in range(55):
            s.add(Prediction(id=f"{i:032d}", image_sha256="e" * 64, image_format="PNG",
                             image_bytes=1, status="ok", label="Normal", confidence=0.9,
                             probabilities={"COVID": 0.1, "Normal": 0.9},
                             created_at=utcnow() - timedelta(days=10, minutes=i)))
        s.commit()
    rad = _logged_in(app, "rad")
    html = rad.get("/history?label=Normal").get_data(as_text=True)
    assert "56 predictions, page 1 of 2." in html  # 55 + the fixture's "a"
    assert f"{0:032d}" in html and f"{54:032d}" not in html
    html = rad.get("/history?label=Normal&page=2").get_data(as_text=True)
    assert f"{54:032d}" in html and f"{0:032d}" not in html
    assert 'href="/history?page=1&amp;label=Normal"' in html
    html = rad.get("/history?label=Viral+Pneumonia").get_data(as_text=True)
    assert "No prediction matches these filters." in html
    html = rad.get("/history?from=2026-12-07&to=2026-12-01").get_data(as_text=True)
    assert "&#39;From&#39; is after &#39;To&#39;" in html
