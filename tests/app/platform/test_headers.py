"""app/platform/headers.py: the security headers of every kind of answer, written out here literally
(never read from the code under test): HTML pages, JSON API answers, errors, static files,
a patient's image, the session cookie. gunicorn's own 400/431 answers are checked the same
way in test_gunicorn_worker.py; HSTS is nginx's (tests/deploy/test_nginx_site.py), the app
itself is only reached over loopback HTTP.
"""

from __future__ import annotations

import io
import re

import accounts
import helpers
import pytest

CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
EVERYWHERE = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# (who asks, method, path) -> (status, Content-Type, Cache-Control)
ANSWERS = {
    "login page": ("anonymous", "GET", "/login", 200, "text/html; charset=utf-8", "no-store"),
    "home page": ("session", "GET", "/", 200, "text/html; charset=utf-8", "no-store"),
    "history page": ("session", "GET", "/history", 200, "text/html; charset=utf-8",
                     "no-store"),
    "page denied": ("session", "GET", "/admin/users", 403, "text/html; charset=utf-8",
                    "no-store"),
    "login asked": ("anonymous", "GET", "/history", 401, "text/html; charset=utf-8",
                    "no-store"),
    "API error": ("token", "POST", "/predict", 415, "application/json", "no-store"),
    "API refused": ("anonymous", "POST", "/predict", 401, "application/json", "no-store"),
    "API document": ("token", "GET", "/openapi.json", 200, "application/json", "no-store"),
    "health": ("anonymous", "GET", "/health", 503, "application/json", "no-store"),
    "docs page": ("anonymous", "GET", "/docs", 200, "text/html; charset=utf-8", "no-store"),
    "not found": ("token", "GET", "/no-such-page", 404, "application/json", "no-store"),
    "wrong method": ("session", "GET", "/logout", 405, "application/json", "no-store"),
    # Static files are the same for everyone: revalidated, never guessed at (nosniff).
    "static script": ("anonymous", "GET", "/static/app.js", 200,
                      "text/javascript; charset=utf-8", "no-cache"),
    "static style": ("anonymous", "GET", "/static/app.css", 200, "text/css; charset=utf-8",
                     "no-cache"),
}


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    from app import create_app

    app = create_app({"data_dir": tmp_path_factory.mktemp("headers"),
                      "mlflow_url": f"http://127.0.0.1:{helpers.free_port()}"})
    app.testing = True
    accounts.add_user(app, "dr-headers", "clinician")
    session = app.test_client()
    assert accounts.login(session, "dr-headers").status_code == 302
    return {"anonymous": app.test_client(), "session": session,
            "token": accounts.bearer_client(app, "dr-headers"), "app": app}


@pytest.mark.parametrize("kind", ANSWERS)
def test_every_kind_of_answer_carries_the_security_headers(clients, kind):
    who, method, path, status, content_type, cache = ANSWERS[kind]
    resp = clients[who].open(path, method=method)
    assert resp.status_code == status
    assert resp.headers["Content-Type"] == content_type
    assert resp.headers["Cache-Control"] == cache
    for name, value in EVERYWHERE.items():
        assert resp.headers.get_all(name) == [value], name  # once, exactly this


def test_a_patients_image_is_cached_only_by_the_browser(clients):
    """The stored image of a prediction (here a contribution, through the real intake) may
    stay in the browser's own cache for an hour (the page shows it again), never in a
    shared cache."""
    app = clients["app"]
    radiologist = accounts.bearer_client(app, "rad-headers", "radiologist")
    png = helpers.synthetic_image("PNG", (300, 300))
    assert radiologist.post("/contribute", data={"file": (io.BytesIO(png), "x.png")}
                            ).status_code == 201
    queue = radiologist.get("/queue").get_data(as_text=True)
    found = re.search(r"/predictions/([0-9a-f]{32})", queue)
    assert found, "the contribution is not in the queue"
    pred_id = found.group(1)
    resp = radiologist.get(f"/predictions/{pred_id}/image")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/png"
    assert resp.headers["Cache-Control"] == "private, max-age=3600"
    for name, value in EVERYWHERE.items():
        assert resp.headers[name] == value, name


def test_the_session_cookie_is_httponly_samesite_and_secure_over_https(clients):
    app = clients["app"]
    plain = app.test_client().get("/login")
    assert plain.headers["Set-Cookie"].endswith("; HttpOnly; Path=/; SameSite=Lax")
    assert "Secure" not in plain.headers["Set-Cookie"]  # loopback HTTP: it would be lost
    https = app.test_client().get("/login", base_url="https://radio.example")
    assert https.headers["Set-Cookie"].endswith("; Secure; HttpOnly; Path=/; SameSite=Lax")
