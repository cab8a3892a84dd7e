"""app/accounts/auth.py: login, session cookie, CSRF, rate limiting, API tokens, forced password
change."""

from __future__ import annotations

import accounts
import pytest
from sqlalchemy import select, text

from app.accounts import security
from app.store import db
from app.store.db.models import AuditEntry


@pytest.fixture()
def app(make_app, tmp_path):
    return make_app(mlflow_url="http://127.0.0.1:9")


def test_anonymous_page_is_401_with_the_login_form(app):
    resp = app.test_client().get("/history")
    assert resp.status_code == 401
    html = resp.get_data(as_text=True)
    assert 'action="/login"' in html and 'name="next" value="/history"' in html


def test_anonymous_api_is_401_json(app):
    resp = app.test_client().post("/predict", data={})
    assert resp.status_code == 401 and resp.is_json and "token" in resp.json["error"]


def test_login_sets_a_hardened_cookie_and_follows_next(app):
    accounts.add_user(app, "ana", "clinician")
    client = app.test_client()
    csrf = accounts.csrf_from(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": "ana", "password": accounts.PASSWORD,
                                       "csrf_token": csrf, "next": "/history"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/history"
    cookie = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith("radio_session=")]
    assert cookie and "HttpOnly" in cookie[0] and "SameSite=Lax" in cookie[0]
    assert "Secure" not in cookie[0]  # plain HTTP here; see the HTTPS test below
    assert client.get("/history").status_code == 200


def test_cookie_is_secure_over_https(app):
    accounts.add_user(app, "ana", "clinician")
    client = app.test_client()
    page = client.get("/login", base_url="https://radio.example")
    csrf = accounts.csrf_from(page.get_data(as_text=True))
    resp = client.post("/login", base_url="https://radio.example",
                       data={"username": "ana", "password": accounts.PASSWORD,
                             "csrf_token": csrf})
    cookie = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith("radio_session=")]
    assert "Secure" in cookie[0]


def test_open_redirect_is_refused(app):
    accounts.add_user(app, "ana", "clinician")
    client = app.test_client()
    csrf = accounts.csrf_from(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": "ana", "password": accounts.PASSWORD,
                                       "csrf_token": csrf, "next": "//evil.example/x"})
    assert resp.headers["Location"] == "/"


def test_login_without_csrf_is_refused(app):
    accounts.add_user(app, "ana", "clinician")
    resp = app.test_client().post("/login", data={"username": "ana",
                                                  "password": accounts.PASSWORD})
    assert resp.status_code == 403


def test_logged_in_post_needs_the_csrf_token(app):
    accounts.add_user(app, "ana", "clinician")
    client = app.test_client()
    accounts.login(client, "ana")
    # A cross-site form post carries the cookie but cannot know the token.
    assert client.post("/account/tokens", data={"name": "x"}).status_code == 403
    assert client.post("/predict", data={}).status_code == 403
    csrf = accounts.csrf_from(client.get("/").get_data(as_text=True))
    assert client.post("/account/tokens", data={"name": "x", "csrf_token": csrf}
                       ).status_code == 201


def test_wrong_password_then_lockout_is_audited(app):
    accounts.add_user(app, "ana", "clinician")
    client = app.test_client()
    statuses = [accounts.login(client, "ana", "wrong password!").status_code for _ in range(5)]
    assert statuses == [401] * 5
    # Locked: even the right password is refused for now.
    assert accounts.login(client, "ana").status_code == 429
    # An unknown user name fails the same way (no account enumeration).
    assert accounts.login(client, "nobody", "whatever").status_code == 401
    with db.session_scope(app.config["RADIO"].db_url) as s:
        actions = [(e.action, e.target) for e in s.scalars(select(AuditEntry))]
    assert actions.count(("login_failed", "ana")) == 5
    assert ("login", "ana") not in actions


def test_bearer_token_works_and_is_stored_hashed(app):
    token = accounts.token(app, "script", "clinician")
    client = app.test_client()
    assert client.get("/history", headers={"Authorization": f"Bearer {token}"}
                      ).status_code == 200
    assert client.get("/history", headers={"Authorization": f"Bearer {token}x"}
                      ).status_code == 401
    # Only the hash is stored.
    with db.get_engine(app.config["RADIO"].db_url).connect() as conn:
        stored = str(conn.execute(text("SELECT * FROM api_tokens")).all())
    assert security.token_hash(token) in stored and token not in stored
    # A bad token is not rescued by a valid session cookie next to it.
    accounts.add_user(app, "ana", "clinician")
    accounts.login(client, "ana")
    assert client.get("/history").status_code == 200
    assert client.get("/history", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_revoked_token_and_disabled_user_are_refused(app):
    accounts.add_user(app, "boss", "admin")
    admin = app.test_client()
    accounts.login(admin, "boss")
    page = admin.get("/account/tokens").get_data(as_text=True)
    resp = admin.post("/account/tokens", data={"name": "ci",
                                               "csrf_token": accounts.csrf_from(page)})
    html = resp.get_data(as_text=True)
    token = html.split('<code id="new-token">')[1].split("</code>")[0]
    api = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    assert api.get("/history", headers=auth).status_code == 200
    with app.app_context():
        from app.store.db import web as dbweb
        from app.store.db.models import ApiToken

        token_id = dbweb.session().scalars(select(ApiToken.id)).one()
    admin.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": accounts.csrf_from(page)})
    assert api.get("/history", headers=auth).status_code == 401


def test_password_change_logs_out_other_sessions(app):
    accounts.add_user(app, "ana", "clinician")
    first, second = app.test_client(), app.test_client()
    accounts.login(first, "ana")
    accounts.login(second, "ana")
    page = first.get("/account/password").get_data(as_text=True)
    resp = first.post("/account/password", data={
        "password": accounts.PASSWORD, "new_password": "a brand new secret",
        "confirm": "a brand new secret", "csrf_token": accounts.csrf_from(page)})
    assert resp.status_code == 302
    assert first.get("/history").status_code == 200
    assert second.get("/history").status_code == 401
    assert accounts.login(second, "ana", "a brand new secret").status_code == 302


def test_one_time_password_must_be_changed_first(app):
    from app.accounts import users
    from app.store.db import web as dbweb

    with app.app_context():
        s = dbweb.session()
        users.create_user(s, "new", "radiologist", "one-time-secret")
        s.commit()
    client = app.test_client()
    resp = accounts.login(client, "new", "one-time-secret")
    assert resp.headers["Location"] == "/account/password"
    assert client.get("/history").status_code == 302  # every page sends them back there
    page = client.get("/account/password").get_data(as_text=True)
    resp = client.post("/account/password", data={
        "password": "one-time-secret", "new_password": "short", "confirm": "short",
        "csrf_token": accounts.csrf_from(page)})
    assert resp.status_code == 400 and "12 characters" in resp.get_data(as_text=True)


def _cookie(client) -> str:
    return client.get_cookie("radio_session").value


def test_a_copied_cookie_stops_working_after_logout(app):
    """Server-side revocation (issue 26: a copied cookie worked until its 12 h expiry)."""
    accounts.add_user(app, "ana", "clinician")
    browser = app.test_client()
    accounts.login(browser, "ana")
    thief = app.test_client()
    thief.set_cookie("radio_session", _cookie(browser))
    assert thief.get("/history").status_code == 200  # the copy works while logged in
    csrf = accounts.csrf_from(browser.get("/history").get_data(as_text=True))
    assert browser.post("/logout", data={"csrf_token": csrf}).status_code == 302
    assert thief.get("/history").status_code == 401
    assert browser.get("/history").status_code == 401


def test_a_cookie_copied_before_a_password_change_stops_working(app):
    accounts.add_user(app, "ana", "clinician")
    browser = app.test_client()
    accounts.login(browser, "ana")
    thief = app.test_client()
    thief.set_cookie("radio_session", _cookie(browser))
    page = browser.get("/account/password").get_data(as_text=True)
    assert browser.post("/account/password", data={
        "password": accounts.PASSWORD, "new_password": "a brand new secret",
        "confirm": "a brand new secret", "csrf_token": accounts.csrf_from(page)}
    ).status_code == 302
    assert thief.get("/history").status_code == 401
    assert browser.get("/history").status_code == 200


@pytest.mark.parametrize("header", ["", " ", "Basic", "Bearer", "Bearer  "])
def test_a_cookie_post_needs_csrf_whatever_the_authorization_header(app, header):
    """Issue 26: an empty ``Authorization:`` header skipped the CSRF check of a cookie."""
    accounts.add_user(app, "ana", "clinician")
    client = app.test_client()
    accounts.login(client, "ana")
    resp = client.post("/account/tokens", data={"name": "x"},
                       headers={"Authorization": header})
    assert resp.status_code in (401, 403)
    with db.session_scope(app.config["RADIO"].db_url) as s:
        assert s.scalar(text("SELECT count(*) FROM api_tokens")) == 0


def _login_from(client, address: str, username: str, password: str):
    csrf = accounts.csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf},
                       headers={"X-Forwarded-For": f"198.51.100.99, {address}"})


def test_lockout_is_per_account_and_real_address_not_global(app):
    """Behind nginx every peer is 127.0.0.1 (issue 26: 20 failures locked everyone out)."""
    accounts.add_user(app, "ana", "clinician")
    accounts.add_user(app, "boss", "admin")
    attacker, ana, other = app.test_client(), app.test_client(), app.test_client()
    for _ in range(5):
        assert _login_from(attacker, "203.0.113.5", "boss", "guess!").status_code == 401
    locked = _login_from(attacker, "203.0.113.5", "boss", accounts.PASSWORD)
    assert locked.status_code == 429
    assert 14 * 60 < int(locked.headers["Retry-After"]) <= 15 * 60
    # The admin from their own address, and another user from anywhere, still log in.
    assert _login_from(other, "203.0.113.77", "boss", accounts.PASSWORD).status_code == 302
    assert _login_from(ana, "203.0.113.5", "ana", accounts.PASSWORD).status_code == 302
    # 20 failures from one address lock that address only, whatever the names.
    for i in range(15):
        _login_from(attacker, "203.0.113.5", f"user{i}", "guess!")
    assert _login_from(attacker, "203.0.113.5", "ana", accounts.PASSWORD).status_code == 429
    fresh = app.test_client()
    assert _login_from(fresh, "192.0.2.8", "ana", accounts.PASSWORD).status_code == 302
    with db.session_scope(app.config["RADIO"].db_url) as s:
        rows = s.execute(text("SELECT action, target, ip FROM audit_log")).all()
    failed = [r for r in rows if r.action == "login_failed"]
    assert {r.ip for r in failed} == {"203.0.113.5"}  # the real address, not 127.0.0.1
    assert ("login", "boss", "203.0.113.77") in [tuple(r) for r in rows]


def test_forwarded_for_is_believed_only_from_the_proxy(app):
    """A client talking to the app directly cannot pick its address for the counts."""
    accounts.add_user(app, "ana", "clinician")
    client = app.test_client()
    csrf = accounts.csrf_from(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": "ana", "password": "nope", "csrf_token": csrf},
                headers={"X-Forwarded-For": "10.9.9.9"},
                environ_base={"REMOTE_ADDR": "203.0.113.9"})
    with db.session_scope(app.config["RADIO"].db_url) as s:
        ips = s.scalars(text("SELECT ip FROM audit_log WHERE action = 'login_failed'")).all()
    assert ips == ["203.0.113.9"]
