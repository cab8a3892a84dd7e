"""The teaching loop (app/clinical/reads.py, app/clinical/teaching.py): Radio's answer stays out of
every page and answer until the clinician's read is recorded; then the three reads side by
side; agreement with radiologists per month, computed in SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import accounts
import helpers
import pytest

from app.accounts import users
from app.clinical import reads as teaching
from app.clinical import reviews
from app.platform.failures import NotAllowed
from app.store.db import web as dbweb
from app.store.db.models import Prediction, TeachingRead, utcnow

CASE = "c" * 32
PROBS = {"COVID": 0.62, "Viral Pneumonia": 0.06, "Other Abnormal": 0.04, "Normal": 0.28}


# --- agreement in SQL ---------------------------------------------------------------


def _case(s, pid, user, radio, read, read_at, *verdicts):
    """A case Radio labelled ``radio``, read as ``read`` at ``read_at``; ``verdicts``:
    (reviewer, verdict, label) in the order they were given."""
    pred = Prediction(id=pid * 32, user_id=user.id, image_sha256=pid * 64,
                      image_format="PNG", image_bytes=1, status="ok", label=radio,
                      probabilities=PROBS)
    s.add(pred)
    s.add(TeachingRead(prediction_id=pred.id, user_id=user.id, label=read,
                       read_at=read_at if read else None))
    s.flush()
    for n, (reviewer, verdict, label) in enumerate(verdicts):
        review = reviews.add(s, pred, reviewer, verdict, label, "")
        review.created_at = utcnow() - timedelta(minutes=10 - n)
    s.flush()
    return pred


def test_agreement_per_month_counts_settled_cases_by_the_latest_reviews(s):
    clin = users.create_user(s, "clin", "clinician")
    other = users.create_user(s, "other", "clinician")
    r1 = users.create_user(s, "r1", "radiologist")
    r2 = users.create_user(s, "r2", "radiologist")
    jan, feb = datetime(2026, 1, 31, 23, 30, tzinfo=UTC), datetime(2026, 2, 1, 0, 30, tzinfo=UTC)
    _case(s, "1", clin, "COVID", "COVID", jan, (r1, "validated", None))
    # r1 corrected to COVID, then validated Normal: the latest review counts.
    _case(s, "2", clin, "Normal", "COVID", jan, (r1, "corrected", "COVID"),
          (r1, "validated", None))
    _case(s, "3", clin, "Normal", "Normal", feb, (r1, "corrected", "Viral Pneumonia"))
    _case(s, "4", clin, "COVID", "COVID", feb, (r1, "validated", None),
          (r2, "corrected", "Normal"))  # radiologists disagree: not settled
    _case(s, "5", clin, "Normal", "Normal", feb, (r1, "unknown", None))  # not settled
    _case(s, "6", clin, "Normal", None, feb, (r1, "validated", None))  # no read yet
    _case(s, "7", other, "Normal", "Normal", feb, (r1, "validated", None))  # another's
    _case(s, "8", clin, "COVID", "Normal", feb)  # not reviewed
    assert teaching.agreement(s, clin) == [teaching.Period("2026-01", 2, 1, 2),
                                           teaching.Period("2026-02", 1, 0, 0)]
    assert teaching.agreement(s, other) == [teaching.Period("2026-02", 1, 1, 1)]
    cases, total = teaching.recent(s, clin)
    assert total == 6
    assert {c.prediction_id[0]: (c.clinician, c.radio, c.radiologist) for c in cases} == {
        "1": ("COVID", "COVID", "COVID"), "2": ("COVID", "Normal", "Normal"),
        "3": ("Normal", "Normal", "Viral Pneumonia"), "4": ("COVID", "COVID", None),
        "5": ("Normal", "Normal", None), "8": ("Normal", "COVID", None)}


def test_a_read_is_recorded_once_by_its_clinician_among_the_classes(s):
    clin = users.create_user(s, "clin", "clinician")
    other = users.create_user(s, "other", "clinician")
    pred = Prediction(id=CASE, user_id=clin.id, image_sha256="f" * 64, image_format="PNG",
                      image_bytes=1, status="ok", label="COVID", probabilities=PROBS)
    refused = Prediction(id="d" * 32, user_id=clin.id, image_sha256="e" * 64,
                         image_format="PNG", image_bytes=1, status="not_xray")
    s.add_all([pred, refused])
    s.flush()
    assert teaching.blind(s, refused, clin) is None  # a refusal has no answer to hide
    with pytest.raises(teaching.TeachingError, match="not analysed in teaching mode"):
        teaching.record(s, pred, clin, "Normal")
    with pytest.raises(NotAllowed, match="Only the clinician"):
        teaching.blind(s, pred, other)
    teaching.blind(s, pred, clin)
    s.flush()
    assert teaching.awaits_read(s, pred, clin) and not teaching.awaits_read(s, pred, other)
    with pytest.raises(NotAllowed, match="Only the clinician"):  # 403, not a form error
        teaching.record(s, pred, other, "Normal")
    with pytest.raises(teaching.TeachingError, match="Choose your read among COVID, Viral"):
        teaching.record(s, pred, clin, "Pneumothorax")
    teaching.record(s, pred, clin, "Normal")
    with pytest.raises(teaching.TeachingError, match="already recorded: Normal"):
        teaching.record(s, pred, clin, "COVID")
    assert not teaching.awaits_read(s, pred, clin)


# --- the pages ------------------------------------------------------------------------


@pytest.fixture()
def site(make_app, db_url):
    from app.store import images

    app = make_app(mlflow_url="http://127.0.0.1:9", database_url=db_url)
    clin = accounts.add_user(app, "clin", "clinician")
    accounts.add_user(app, "clin2", "clinician")
    accounts.add_user(app, "rad", "radiologist")
    png = helpers.synthetic_image("PNG", (64, 64))
    sha = images.store(app.config["RADIO"].data_dir / "images", png, "PNG")
    with app.app_context():
        s = dbweb.session()
        pred = Prediction(id=CASE, user_id=clin, image_sha256=sha, image_format="PNG",
                          image_bytes=len(png), status="ok", label="COVID",
                          probabilities=PROBS, confidence=0.62,
                          heatmap=[[0.0, 1.0], [0.5, 0.2]], model_name="radio-cxr",
                          model_version="11")
        s.add(pred)
        s.flush()
        teaching.blind(s, pred, users.find(s, "clin"))
        s.commit()
    return app


def _client(app, name):
    client = app.test_client()
    accounts.login(client, name)
    return client


def _csrf(client) -> str:
    return accounts.csrf_from(client.get("/history").get_data(as_text=True))


def _hides_the_answer(html: str) -> None:
    for said in ("62.0%", "28.0%", "data-heatmap", "COVID \u2014", "Radio said"):
        assert said not in html, said


def test_the_answer_stays_hidden_until_the_read_then_three_reads(site):
    clin = _client(site, "clin")
    resp = clin.get(f"/predictions/{CASE}")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/{CASE}/read")
    page = clin.get(f"/predictions/{CASE}/read").get_data(as_text=True)
    _hides_the_answer(page)
    assert "Your read first" in page and 'value="Other Abnormal"' in page
    history = clin.get("/history").get_data(as_text=True)
    _hides_the_answer(history)
    assert "awaiting your read" in history
    assert "0 predictions" in clin.get("/history?label=COVID").get_data(as_text=True)
    # Another clinician may neither see nor read it; no token, no read.
    clin2 = _client(site, "clin2")
    assert clin2.get(f"/predictions/{CASE}/read").status_code == 403
    assert clin2.post(f"/predictions/{CASE}/read", data={
        "label": "COVID", "csrf_token": _csrf(clin2)}).status_code == 403
    assert clin.post(f"/predictions/{CASE}/read", data={"label": "Normal"}).status_code == 403

    # The Analyse page's call: the answer comes back only now.
    json_headers = {"Accept": "application/json", "X-CSRF-Token": _csrf(clin)}
    resp = clin.post(f"/predictions/{CASE}/read", data={"label": "Normal"},
                     headers=json_headers)
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["label"], body["probabilities"], body["heatmap"]) == (
        "COVID", PROBS, [[0.0, 1.0], [0.5, 0.2]])
    assert body["explanation"]["headline"] == "COVID \u2014 62.0%"
    again = clin.post(f"/predictions/{CASE}/read", data={"label": "COVID"},
                      headers=json_headers)
    assert again.status_code == 409
    assert again.get_json()["error"] == "Your read of this case is already recorded: Normal."

    page = clin.get(f"/predictions/{CASE}").get_data(as_text=True)
    assert "COVID \u2014 62.0%" in page
    assert '<strong id="read-mine">Normal</strong>' in page
    assert '<strong id="read-radio">COVID</strong>' in page
    assert '<strong id="read-radiologist">not settled yet</strong>' in page

    rad = _client(site, "rad")
    assert rad.post(f"/predictions/{CASE}/review", data={
        "verdict": "validated", "csrf_token": _csrf(rad)}).status_code == 302
    page = clin.get(f"/predictions/{CASE}").get_data(as_text=True)
    assert '<strong id="read-radiologist">COVID</strong>' in page
    assert "Your read differs from the radiologist's (COVID)." in page
    assert "Radio's matches too." in page
    mine = clin.get("/teaching").get_data(as_text=True)
    assert '<strong id="mine-total">0 of 1</strong> (0.0%)' in mine
    assert '<strong id="radio-total">1 of 1</strong> (100.0%)' in mine
    assert "1 read recorded, 1 settled by a radiologist" in mine
    # The radiologist never sees the clinician's read panel: it is the clinician's.
    assert "read-mine" not in rad.get(f"/predictions/{CASE}").get_data(as_text=True)


def test_a_read_of_another_clinicians_teaching_case_is_a_403(site):
    # A radiologist may open the case, but the read is its clinician's: refused with a
    # 403 (a page for the browser's form, JSON for a token), not a redirect to the form.
    refused = "Only the clinician who asked for this analysis can read it."
    rad = _client(site, "rad")
    resp = rad.post(f"/predictions/{CASE}/read", data={"label": "COVID", "csrf_token": _csrf(rad)},
                    headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert resp.status_code == 403 and resp.mimetype == "text/html"
    assert f'<p class="message error" role="alert">{refused}</p>' in resp.get_data(as_text=True)
    api = accounts.bearer_client(site, "rad-api", "radiologist")
    resp = api.post(f"/predictions/{CASE}/read", data={"label": "COVID"},
                    headers={"Accept": "application/json"})
    assert (resp.status_code, resp.get_json()) == (403, {"error": refused})
    with site.app_context():
        assert dbweb.session().get(TeachingRead, CASE).label is None


def test_an_html_form_read_lands_on_the_case_page(site):
    clin = _client(site, "clin")
    clin.environ_base["HTTP_ACCEPT"] = "text/html,application/xhtml+xml,*/*;q=0.8"  # a browser
    csrf = _csrf(clin)
    resp = clin.post(f"/predictions/{CASE}/read", data={"label": "Pneumothorax",
                                                         "csrf_token": csrf})
    assert resp.status_code == 302 and "error=Choose+your+read" in resp.headers["Location"]
    resp = clin.post(f"/predictions/{CASE}/read", data={"label": "COVID", "csrf_token": csrf})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/predictions/{CASE}")
    page = clin.get(resp.headers["Location"]).get_data(as_text=True)
    assert '<strong id="read-mine">COVID</strong>' in page


def test_teaching_predict_answers_no_diagnosis_before_the_read(client, xray_path):
    """The real model server analyses the X-ray; the answer holds no trace of its result
    until the read is recorded."""
    resp = client.post("/teaching/predict",
                       data={"file": (xray_path.open("rb"), "film.png")},
                       content_type="multipart/form-data")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"id", "status", "model", "classes"}
    assert body["status"] == "awaiting_read"
    assert sorted(body["classes"]) == ["COVID", "Normal", "Other Abnormal", "Viral Pneumonia"]
    for hidden in ("probabilities", "confidence", "heatmap", "explanation", "needs_review"):
        assert hidden not in resp.get_data(as_text=True)
    assert client.get(f"/predictions/{body['id']}").status_code == 302
    shown = client.post(f"/predictions/{body['id']}/read", data={"label": "Normal"},
                        headers={"Accept": "application/json"})
    assert shown.status_code == 200
    answer = shown.get_json()
    assert answer["status"] == "ok" and answer["label"] in body["classes"]
    assert abs(sum(answer["probabilities"].values()) - 1.0) < 1e-3
    assert answer["explanation"]["headline"].startswith(answer["label"])
    assert client.get(f"/predictions/{body['id']}").status_code == 200


def test_a_refusal_in_teaching_mode_is_answered_as_it_is(client, tmp_path):
    """A generated text document: the real model refuses it; there is nothing to read, so the
    refusal comes at once and the case page opens."""
    from training.nonxray import generated

    _, img = next(generated(seed=1))
    document = tmp_path / "letter.png"
    img.save(document)
    resp = client.post("/teaching/predict", data={"file": (document.open("rb"), "letter.png")},
                       content_type="multipart/form-data")
    body = resp.get_json()
    assert resp.status_code == 200 and body["status"] == "not_xray"
    assert body["explanation"]["headline"] == "Not a chest X-ray"
    assert client.get(f"/predictions/{body['id']}").status_code == 200


def test_a_radiologists_own_teaching_case_hides_its_answer_in_the_queue(site):
    with site.app_context():
        s = dbweb.session()
        rad = users.find(s, "rad")
        pred = Prediction(id="e" * 32, user_id=rad.id, image_sha256="9" * 64,
                          image_format="PNG", image_bytes=1, status="ok", label="Normal",
                          probabilities={"COVID": 0.1, "Normal": 0.9}, confidence=0.9)
        s.add(pred)
        s.flush()
        teaching.blind(s, pred, rad)
        s.commit()
    queue = _client(site, "rad").get("/queue").get_data(as_text=True)
    assert f'/predictions/{"e" * 32}/read' in queue and "Your read first" in queue
    assert "Normal \u2014 90.0%" not in queue
    assert "COVID \u2014 62.0%" in queue  # the clinician's case: the radiologist sees it
