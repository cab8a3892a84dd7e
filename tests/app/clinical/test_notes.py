"""Clinicians' notes (app/clinical/notes.py, app/clinical/teaching.py): only the author
writes one, only the author and radiologists see it (not other clinicians, not admins), the
history finds a case by it in SQL, and its length is bounded."""

from __future__ import annotations

import json

import accounts
import helpers
import pytest
from sqlalchemy import select

from app.clinical import notes
from app.store import db, images
from app.store.db import web as dbweb
from app.store.db.models import AuditEntry, CaseNote, Prediction

CASE = "a" * 32
OTHER = "b" * 32
NOTE = "Study 4711_B ward 3"


@pytest.fixture()
def site(make_app, db_url):
    app = make_app(mlflow_url="http://127.0.0.1:9", database_url=db_url)
    clin = accounts.add_user(app, "clin", "clinician")
    accounts.add_user(app, "clin2", "clinician")
    accounts.add_user(app, "rad", "radiologist")
    accounts.add_user(app, "adm", "admin")
    png = helpers.synthetic_image("PNG", (64, 64))
    sha = images.store(app.config["RADIO"].data_dir / "images", png, "PNG")
    with app.app_context():
        s = dbweb.session()
        for pid in (CASE, OTHER):
            s.add(Prediction(id=pid, user_id=clin, image_sha256=sha, image_format="PNG",
                             image_bytes=len(png), status="ok", label="Normal",
                             probabilities={"COVID": 0.3, "Normal": 0.7}, confidence=0.7))
        s.commit()
    return app


def _client(app, name):
    client = app.test_client()
    accounts.login(client, name)
    return client


def _save(client, text, pred_id=CASE):
    page = client.get("/history").get_data(as_text=True)  # any page: the session's token
    return client.post(f"/predictions/{pred_id}/note",
                       data={"note": text, "csrf_token": accounts.csrf_from(page)})


def _history(client, **args) -> str:
    return client.get("/history", query_string=args).get_data(as_text=True)


def test_author_notes_a_case_and_finds_it_again(site, db_url):
    clin = _client(site, "clin")
    page = clin.get(f"/predictions/{CASE}").get_data(as_text=True)
    assert "Do not type patient names" in page and 'maxlength="120"' in page
    resp = _save(clin, f"  {NOTE}\n ")
    assert resp.status_code == 302 and "note_saved=1" in resp.headers["Location"]
    page = clin.get(f"/predictions/{CASE}").get_data(as_text=True)
    assert f'value="{NOTE}"' in page
    found = _history(clin, note="4711_b")  # any case; the underscore is a literal one
    assert CASE in found and OTHER not in found and NOTE in found
    assert "1 prediction." in found
    assert CASE not in _history(clin, note="4711%B")  # % is literal too, not a wildcard
    assert "0 predictions" in _history(clin, note="nothing like it")
    with db.session_scope(db_url) as s:
        assert s.get(CaseNote, CASE).text == NOTE
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "note_saved")).one()
    assert audit.target == CASE and "4711" not in json.dumps(audit.detail)
    # An empty note removes it.
    _save(clin, "")
    with db.session_scope(db_url) as s:
        assert s.get(CaseNote, CASE) is None


def test_length_is_bounded(site, db_url):
    clin = _client(site, "clin")
    resp = _save(clin, "x" * 121)
    assert resp.status_code == 302 and "note_error" in resp.headers["Location"]
    page = clin.get(resp.headers["Location"]).get_data(as_text=True)
    assert "The note is 121 characters long; at most 120." in page
    with db.session_scope(db_url) as s:
        assert s.get(CaseNote, CASE) is None
    _save(clin, "y" * 120)
    with db.session_scope(db_url) as s:
        assert s.get(CaseNote, CASE).text == "y" * 120
    with pytest.raises(notes.NoteError, match="control characters"):
        notes.clean("ref\x00 7")


def test_radiologist_sees_it_other_clinicians_and_admins_do_not(site):
    _save(_client(site, "clin"), NOTE)
    rad = _client(site, "rad")
    page = rad.get(f"/predictions/{CASE}").get_data(as_text=True)
    assert NOTE in page and "Clinician&#39;s note" in page
    assert 'name="note"' not in page  # a radiologist reads it, never writes it
    assert CASE in _history(rad, note="4711") and NOTE in _history(rad)

    adm = _client(site, "adm")
    page = adm.get(f"/predictions/{CASE}").get_data(as_text=True)
    assert page.count(CASE) >= 1 and "4711" not in page  # the case yes, its note no
    assert "4711" not in _history(adm)
    assert "0 predictions" in _history(adm, note="4711")

    clin2 = _client(site, "clin2")
    assert clin2.get(f"/predictions/{CASE}").status_code == 403
    assert "0 predictions" in _history(clin2, note="4711")
    # The JSON answers (what an API client gets for the same case) never carry it either.
    api = accounts.bearer_client(site, "adm-api", "admin")
    for path in (f"/predictions/{CASE}", "/history?note=4711", f"/predictions/{CASE}/read"):
        resp = api.get(path, headers={"Accept": "application/json"})
        assert NOTE not in resp.get_data(as_text=True), path


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
REFUSED = "Only the clinician who asked for this analysis can note it."


def test_only_the_author_writes_and_forms_need_the_csrf_token(site, db_url):
    # Someone else's case is refused with a 403, not sent back to the form with a reason:
    # a page for the browser's form, JSON for a script with a token.
    for name in ("rad", "adm"):
        client = _client(site, name)
        csrf = accounts.csrf_from(client.get("/history").get_data(as_text=True))
        resp = client.post(f"/predictions/{CASE}/note", headers=BROWSER,
                           data={"note": "mine now", "csrf_token": csrf})
        assert resp.status_code == 403 and resp.mimetype == "text/html", name
        assert f'<p class="message error" role="alert">{REFUSED}</p>' in resp.get_data(
            as_text=True)
        api = accounts.bearer_client(site, f"{name}-api", "radiologist" if name == "rad"
                                     else "admin")
        resp = api.post(f"/predictions/{CASE}/note", data={"note": "mine now"},
                        headers={"Accept": "application/json"})
        assert (resp.status_code, resp.get_json()) == (403, {"error": REFUSED}), name
    resp = _save(_client(site, "clin2"), "mine now")
    assert resp.status_code == 403
    api = accounts.bearer_client(site, "clin2-api", "clinician")
    assert api.post(f"/predictions/{CASE}/note", data={"note": "x"}).status_code == 403
    clin = _client(site, "clin")
    clin.get(f"/predictions/{CASE}")
    assert clin.post(f"/predictions/{CASE}/note", data={"note": NOTE}).status_code == 403
    with db.session_scope(db_url) as s:
        assert s.scalars(select(CaseNote)).all() == []


def test_history_says_when_a_radiologist_corrected_a_noted_case(site):
    clin = _client(site, "clin")
    _save(clin, NOTE)
    rad = _client(site, "rad")
    page = rad.get(f"/predictions/{CASE}").get_data(as_text=True)
    rad.post(f"/predictions/{CASE}/review", data={
        "verdict": "corrected", "label": "COVID", "csrf_token": accounts.csrf_from(page)})
    found = _history(clin, note="4711")
    assert "Corrected by a radiologist to COVID (Radio said Normal)" in found
    page = clin.get(f"/predictions/{CASE}").get_data(as_text=True)
    assert "Corrected by a radiologist to COVID (Radio said Normal)" in page
    assert "replaced by a later review" not in page
    # The radiologist changes their mind: the old review stays listed, marked as replaced.
    page = rad.get(f"/predictions/{CASE}").get_data(as_text=True)
    rad.post(f"/predictions/{CASE}/review", data={
        "verdict": "validated", "csrf_token": accounts.csrf_from(page)})
    page = clin.get(f"/predictions/{CASE}").get_data(as_text=True)
    assert page.count("(replaced by a later review)") == 1
    assert "Validated by a radiologist: Normal" in page
