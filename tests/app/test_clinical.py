"""app/clinical.py: history filters, the prediction page, reviewing, the queue page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import accounts
import helpers
import pytest
from sqlalchemy import select

from app import db, images
from app.db import web as dbweb
from app.db.models import AuditEntry, Prediction, Review, utcnow


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
    assert "corrected to COVID" in page and "subtle opacities" in page
    assert 'value="validated"' not in page  # clinicians get no review form
    assert clin.get(f"/predictions/{'a' * 32}/image").data == png
    html = clin.get("/history?state=agreed").get_data(as_text=True)
    assert "a" * 32 in html
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


def test_queue_page_lists_then_drops_what_was_reviewed(site):
    app, _ = site
    rad = _logged_in(app, "rad")
    html = rad.get("/queue").get_data(as_text=True)
    # Oldest first within the unflagged group.
    assert html.index("b" * 32) < html.index("a" * 32)
    page = rad.get(f"/predictions/{'b' * 32}").get_data(as_text=True)
    resp = rad.post(f"/predictions/{'b' * 32}/review", data={
        "verdict": "unknown", "comment": "", "then": "queue",
        "csrf_token": accounts.csrf_from(page)})
    assert resp.headers["Location"] == "/queue"
    html = rad.get("/queue").get_data(as_text=True)
    assert "b" * 32 not in html and "a" * 32 in html
