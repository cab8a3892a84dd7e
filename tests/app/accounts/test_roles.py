"""The role matrix: every route of the URL map, anonymously and as each role, once with an
API token (``Authorization: Bearer``) and once with a browser session (and its CSRF token).

Each answer must be the EXACT status written in MATRIX below (a 404 or a 500 where a 200 is
written fails, as does a 200 where a 403 is). A route missing from MATRIX fails the test,
so nobody adds a page without deciding who may use it. The requests carry no valid form, so
an allowed POST is answered by its own validation (400, 404 for an unknown id, 302 back to
the page with the error), which proves the role check let it through.
"""

from __future__ import annotations

import io
import re

import accounts
import helpers
import pytest

from app.store.db import web as dbweb
from app.store.db.models import Prediction

WHO = ("anonymous", "clinician", "radiologist", "admin")
# (method, rule): (statuses with a token, statuses with a session), each in WHO's order.
# /account/password is a browser page: a token cannot change a password (401). POST /login
# needs the login page's CSRF token unless a bearer token proves it is no browser (403).
MATRIX: dict[tuple[str, str], tuple[tuple[int, ...], tuple[int, ...]]] = {
    ("GET", "/static/<path:filename>"): ((200, 200, 200, 200), (200, 200, 200, 200)),
    ("GET", "/health"): ((503, 503, 503, 503), (503, 503, 503, 503)),  # no model server
    ("GET", "/version"): ((200, 200, 200, 200), (200, 200, 200, 200)),
    ("GET", "/openapi.json"): ((200, 200, 200, 200), (200, 200, 200, 200)),
    ("GET", "/docs"): ((200, 200, 200, 200), (200, 200, 200, 200)),
    ("GET", "/login"): ((200, 200, 200, 200), (200, 200, 200, 200)),
    ("POST", "/login"): ((403, 401, 401, 401), (401, 401, 401, 401)),
    ("POST", "/logout"): ((302, 302, 302, 302), (302, 302, 302, 302)),
    ("GET", "/account/password"): ((401, 401, 401, 401), (401, 200, 200, 200)),
    ("POST", "/account/password"): ((401, 401, 401, 401), (401, 400, 400, 400)),
    ("GET", "/"): ((401, 200, 200, 200), (401, 200, 200, 200)),
    ("POST", "/predict"): ((401, 415, 415, 415), (401, 415, 415, 415)),
    ("GET", "/history"): ((401, 200, 200, 200), (401, 200, 200, 200)),
    ("GET", "/predictions/<pred_id>"): ((401, 200, 200, 200), (401, 200, 200, 200)),
    ("GET", "/predictions/<pred_id>/image"): ((401, 200, 200, 200), (401, 200, 200, 200)),
    ("POST", "/predictions/<pred_id>/review"): ((401, 403, 302, 302), (401, 403, 302, 302)),
    ("GET", "/queue"): ((401, 403, 200, 200), (401, 403, 200, 200)),
    ("GET", "/account/tokens"): ((401, 200, 200, 200), (401, 200, 200, 200)),
    ("POST", "/account/tokens"): ((401, 201, 201, 201), (401, 201, 201, 201)),
    ("POST", "/account/tokens/<int:token_id>/revoke"): ((401, 404, 404, 404),
                                                        (401, 404, 404, 404)),
    ("GET", "/admin/users"): ((401, 403, 403, 200), (401, 403, 403, 200)),
    ("POST", "/admin/users"): ((401, 403, 403, 400), (401, 403, 403, 400)),
    ("POST", "/admin/users/<int:user_id>"): ((401, 403, 403, 400), (401, 403, 403, 400)),
    ("GET", "/contribute"): ((401, 403, 200, 200), (401, 403, 200, 200)),
    ("POST", "/contribute"): ((401, 403, 400, 400), (401, 403, 400, 400)),
    ("GET", "/datasets"): ((401, 403, 403, 200), (401, 403, 403, 200)),
    ("POST", "/datasets/snapshot"): ((401, 403, 403, 400), (401, 403, 403, 400)),
    ("GET", "/admin/models"): ((401, 403, 403, 200), (401, 403, 403, 200)),
    ("POST", "/admin/models"): ((401, 403, 403, 400), (401, 403, 403, 400)),
    ("GET", "/admin/models/tasks/<task_id>"): ((401, 403, 403, 404), (401, 403, 403, 404)),
    ("GET", "/admin/monitoring"): ((401, 403, 403, 200), (401, 403, 403, 200)),
    ("GET", "/admin/monitoring/<kind>.html"): ((401, 403, 403, 404), (401, 403, 403, 404)),
    # Admin pages of issue 27: a run, a dataset version that does not exist is 404; starting
    # a monitoring job answers 303 to the page that shows it.
    ("GET", "/admin/audit"): ((401, 403, 403, 200), (401, 403, 403, 200)),
    ("POST", "/admin/monitoring/run"): ((401, 403, 403, 303), (401, 403, 403, 303)),
    ("GET", "/admin/monitoring/runs/<run_id>"): ((401, 403, 403, 404), (401, 403, 403, 404)),
    ("GET", "/admin/models/listing"): ((401, 403, 403, 200), (401, 403, 403, 200)),
    ("GET", "/datasets/<kind>/v<int:number>"): ((401, 403, 403, 404), (401, 403, 403, 404)),
    ("GET", "/datasets/<kind>/v<int:number>/manifest.csv"): ((401, 403, 403, 404),
                                                             (401, 403, 403, 404)),
    ("GET", "/datasets/production/v<int:number>.zip"): ((401, 403, 403, 404),
                                                        (401, 403, 403, 404)),
    # Teaching mode and notes: any clinician or above. The read form of a case that awaits no
    # read sends to the case (302); recording a read there is a conflict (409); a note is
    # saved on one's own case (302 to it) and refused on another's (403, nothing stored).
    ("POST", "/teaching/predict"): ((401, 415, 415, 415), (401, 415, 415, 415)),
    ("GET", "/predictions/<pred_id>/read"): ((401, 302, 302, 302), (401, 302, 302, 302)),
    ("POST", "/predictions/<pred_id>/read"): ((401, 409, 409, 409), (401, 409, 409, 409)),
    ("GET", "/teaching"): ((401, 200, 200, 200), (401, 200, 200, 200)),
    ("POST", "/predictions/<pred_id>/note"): ((401, 302, 403, 403), (401, 302, 403, 403)),
}


@pytest.fixture()
def setup(make_app):
    """An app with one user per role, a clinician's prediction whose image is really
    stored (contributed through POST /contribute, so it went through the real intake), and
    the values of the URL variables."""
    app = make_app(mlflow_url="http://127.0.0.1:9")
    ids = {role: accounts.add_user(app, f"u-{role}", role) for role in WHO[1:]}
    spare = accounts.add_user(app, "spare", "clinician")
    radiologist = accounts.bearer_client(app, "u-radiologist", "radiologist")
    resp = radiologist.post("/contribute", data={
        "file": (io.BytesIO(helpers.synthetic_image("PNG")), "x.png")})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    with app.app_context():
        s = dbweb.session()
        stored = s.query(Prediction).one()
        s.add(Prediction(id="c" * 32, user_id=ids["clinician"], image_sha256=stored.image_sha256,
                         image_format=stored.image_format, image_bytes=stored.image_bytes,
                         status="ok", label="Normal", probabilities={"Normal": 1.0},
                         confidence=1.0))
        s.commit()
    values = {"pred_id": "c" * 32, "token_id": "999999", "user_id": str(spare),
              "filename": "app.css", "kind": "data", "task_id": "0" * 16,
              "number": "1", "run_id": "0" * 16}
    return app, values


def _url(rule: str, values: dict[str, str]) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: values[m.group(1)], rule)


def _client(app, mode: str, who: str, address: str):
    """A test client of ``who`` (``mode`` token or session) and the headers it sends.

    Each client has its own address: the empty logins it tries count per address, and
    eight of them from one address would lock the ninth out (429)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    headers: dict[str, str] = {}
    if mode == "token" and who != "anonymous":
        headers["Authorization"] = f"Bearer {accounts.token(app, f'u-{who}', who)}"
    if mode == "session":
        if who != "anonymous":
            assert accounts.login(client, f"u-{who}").status_code == 302
        headers["X-CSRF-Token"] = accounts.csrf_from(client.get("/login").get_data(as_text=True))
    return client, headers


def _routes(app) -> list[tuple[str, str]]:
    return sorted((method, rule.rule) for rule in app.url_map.iter_rules()
                  for method in rule.methods - {"HEAD", "OPTIONS"})


def test_the_matrix_names_every_route(setup):
    app, _ = setup
    routes = _routes(app)
    assert [r for r in routes if r not in MATRIX] == [], "routes without a MATRIX entry"
    assert [r for r in MATRIX if r not in routes] == [], "MATRIX entries of no route"


@pytest.mark.parametrize("mode", ["token", "session"])
def test_every_route_answers_each_role_exactly_as_declared(setup, mode):
    app, values = setup
    column = 0 if mode == "token" else 1
    wrong = []
    for n, who in enumerate(WHO):
        client, headers = _client(app, mode, who, f"10.0.{column}.{n + 1}")
        # Logout last: it ends the session the other rows need.
        for method, rule in sorted(MATRIX, key=lambda r: r[1] == "/logout"):
            expected = MATRIX[(method, rule)][column][n]
            resp = client.open(_url(rule, values), method=method, headers=headers,
                               data={} if method == "POST" else None)
            if resp.status_code != expected:
                wrong.append(f"{mode} {who} {method} {rule}: {resp.status_code}, "
                             f"expected {expected}")
            resp.close()
        if mode == "session" and who != "anonymous":
            # The logout ended the session on the server: the same cookie is refused.
            assert client.get("/").status_code == 401, who
    assert wrong == []


def test_a_session_without_its_csrf_token_changes_nothing(setup):
    """Every state-changing route refuses a logged-in browser session that lacks the CSRF
    token (403), whatever the role; /logout included, so a foreign page cannot log one
    out. An empty ``Authorization:`` header is no token and does not skip the check."""
    app, values = setup
    posts = [rule for method, rule in MATRIX if method == "POST"]
    for n, who in enumerate(WHO[1:]):
        client, _ = _client(app, "session", who, f"10.0.3.{n + 1}")
        for rule in posts:
            for headers in ({}, {"Authorization": ""}):
                resp = client.post(_url(rule, values), data={}, headers=headers)
                assert resp.status_code == 403, (who, rule, headers)
                resp.close()
        assert client.get("/").status_code == 200, who  # still logged in


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
