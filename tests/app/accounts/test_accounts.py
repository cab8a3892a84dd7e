"""app/accounts/accounts.py: user administration and personal tokens through the pages."""

from __future__ import annotations

import re

import accounts
import pytest


@pytest.fixture()
def app(make_app):
    app = make_app(mlflow_url="http://127.0.0.1:9")
    accounts.add_user(app, "boss", "admin")
    return app


def _admin(app):
    client = app.test_client()
    accounts.login(client, "boss")
    return client, accounts.csrf_from(client.get("/admin/users").get_data(as_text=True))


def test_admin_creates_a_user_who_logs_in_with_the_shown_password(app):
    admin, csrf = _admin(app)
    resp = admin.post("/admin/users", data={"username": "nurse", "role": "clinician",
                                            "csrf_token": csrf})
    assert resp.status_code == 201
    password = re.search(r'id="one-time-password">([^<]+)<', resp.get_data(as_text=True))[1]
    assert admin.get("/admin/users").get_data(as_text=True).count(password) == 0  # shown once
    new = app.test_client()
    assert accounts.login(new, "nurse", password).headers["Location"] == "/account/password"
    dup = admin.post("/admin/users", data={"username": "nurse", "role": "clinician",
                                           "csrf_token": csrf})
    assert dup.status_code == 400 and "already exists" in dup.get_data(as_text=True)


def test_disable_logs_the_user_out_and_role_changes_apply(app):
    uid = accounts.add_user(app, "rad", "radiologist")
    rad = app.test_client()
    accounts.login(rad, "rad")
    assert rad.get("/queue").status_code == 200
    admin, csrf = _admin(app)
    admin.post(f"/admin/users/{uid}", data={"action": "role", "role": "clinician",
                                            "csrf_token": csrf})
    accounts.login(rad, "rad")
    assert rad.get("/queue").status_code == 403
    admin.post(f"/admin/users/{uid}", data={"action": "disable", "csrf_token": csrf})
    assert rad.get("/history").status_code == 401
    assert accounts.login(rad, "rad").status_code == 401


def test_admin_cannot_demote_or_disable_themselves(app):
    admin, csrf = _admin(app)
    page = admin.get("/admin/users").get_data(as_text=True)
    my_id = re.search(r'action="/admin/users/(\d+)"', page)[1]
    resp = admin.post(f"/admin/users/{my_id}", data={"action": "disable", "csrf_token": csrf})
    assert resp.status_code == 400
    assert admin.get("/admin/users").status_code == 200
