"""The role matrix: every route of the URL map, anonymously and as each role.

Each (endpoint, method) must have an entry in ROUTES; a new route without one fails the
test, so nobody adds a page without deciding who may use it.
"""

from __future__ import annotations

import re

import accounts
import pytest

from app.db import web as dbweb
from app.db.models import Prediction

# (endpoint, method) -> the least role allowed ("public": anyone; "login": the form itself)
ROUTES = {
    ("static", "GET"): "public",
    ("health.health", "GET"): "public",
    ("health.version", "GET"): "public",
    ("openapi.openapi_json", "GET"): "public",
    ("openapi.docs", "GET"): "public",
    ("auth.login", "GET"): "public",
    ("auth.login", "POST"): "login",
    ("auth.logout", "POST"): "public",
    ("auth.password", "GET"): "clinician",
    ("auth.password", "POST"): "clinician",
    ("web.index", "GET"): "clinician",
    ("predict.predict", "POST"): "clinician",
    ("clinical.history", "GET"): "clinician",
    ("clinical.detail", "GET"): "clinician",
    ("clinical.image", "GET"): "clinician",
    ("clinical.review", "POST"): "radiologist",
    ("clinical.queue", "GET"): "radiologist",
    ("teaching.analyse", "POST"): "clinician",
    ("teaching.read_form", "GET"): "clinician",
    ("teaching.record_read", "POST"): "clinician",
    ("teaching.progress", "GET"): "clinician",
    ("teaching.save_note", "POST"): "clinician",
    ("admin.tokens", "GET"): "clinician",
    ("admin.new_token", "POST"): "clinician",
    ("admin.revoke_token", "POST"): "clinician",
    ("admin.users_page", "GET"): "admin",
    ("admin.create", "POST"): "admin",
    ("admin.change", "POST"): "admin",
    ("datasets.contribute_form", "GET"): "radiologist",
    ("datasets.contribute", "POST"): "radiologist",
    ("datasets.overview", "GET"): "admin",
    ("datasets.snapshot", "POST"): "admin",
    ("monitoring.page", "GET"): "admin",
    ("monitoring.report", "GET"): "admin",
    ("models.page", "GET"): "admin",
    ("models.action", "POST"): "admin",
    ("models.task_status", "GET"): "admin",
}
ROLES = ("clinician", "radiologist", "admin")
RANK = {"anonymous": -1, "clinician": 0, "radiologist": 1, "admin": 2}


@pytest.fixture()
def setup(make_app):
    app = make_app(mlflow_url="http://127.0.0.1:9")
    ids = {role: accounts.add_user(app, f"u-{role}", role) for role in ROLES}
    with app.app_context():
        s = dbweb.session()
        s.add(Prediction(id="c" * 32, user_id=ids["clinician"], image_sha256="0" * 64,
                         image_format="PNG", image_bytes=1, status="ok", label="Normal",
                         probabilities={"Normal": 1.0}, confidence=1.0))
        s.commit()
    values = {"pred_id": "c" * 32, "token_id": "999999", "user_id": str(ids["clinician"]),
              "filename": "app.css", "kind": "data",
              "task_id": "0" * 16}
    return app, values


def _url(rule, values: dict[str, str]) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: values[m.group(1)], rule.rule)


def _client(app, who: str):
    client = app.test_client()
    if who != "anonymous":
        accounts.login(client, f"u-{who}")
    page = client.get("/login").get_data(as_text=True)
    return client, accounts.csrf_from(page)


def test_every_route_allows_and_denies_as_declared(setup):
    app, values = setup
    rules = [(rule, method) for rule in app.url_map.iter_rules()
             for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    missing = [(r.endpoint, m) for r, m in rules if (r.endpoint, m) not in ROUTES]
    assert not missing, f"routes without a role entry in ROUTES: {missing}"
    for who in ("anonymous", *ROLES):
        client, csrf = _client(app, who)
        for rule, method in rules:
            need = ROUTES[(rule.endpoint, method)]
            url = _url(rule, values)
            if rule.endpoint == "auth.logout":
                continue  # would end this client's session; tried last below
            resp = client.open(url, method=method, headers={"X-CSRF-Token": csrf},
                               data={} if method == "POST" else None)
            got = resp.status_code
            where = f"{who} {method} {url} -> {got}"
            resp.close()
            if need == "public":
                assert got not in (401, 403), where
            elif need == "login":
                assert got == 401, where  # empty credentials are wrong credentials
            elif RANK[who] < 0:
                assert got == 401, where
            elif RANK[who] < RANK[need]:
                assert got == 403, where
            else:
                assert got not in (401, 403), where
        resp = client.post("/logout", headers={"X-CSRF-Token": csrf})
        assert resp.status_code == 302, who


def test_clinicians_see_only_their_own_predictions(setup):
    app, values = setup
    accounts.add_user(app, "other", "clinician")
    other = app.test_client()
    accounts.login(other, "other")
    assert other.get(f"/predictions/{values['pred_id']}").status_code == 403
    assert other.get(f"/predictions/{values['pred_id']}/image").status_code == 403
    assert values["pred_id"] not in other.get("/history").get_data(as_text=True)
    owner = app.test_client()
    accounts.login(owner, "u-clinician")
    assert values["pred_id"] in owner.get("/history").get_data(as_text=True)
    radiologist = app.test_client()
    accounts.login(radiologist, "u-radiologist")
    assert values["pred_id"] in radiologist.get("/history").get_data(as_text=True)
