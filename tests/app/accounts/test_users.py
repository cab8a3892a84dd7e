"""app/accounts/users.py: the accounts CLI (real subprocesses) on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import accounts
import helpers
from sqlalchemy import select

from app import create_app
from app.accounts import security, users
from app.store import db
from app.store.db.models import ApiToken, AuditEntry, User


def _cli(db_url: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = helpers.server_env(PYTHONPATH=str(helpers.ROOT), RADIO_DATA_DIR=str(tmp_path / "d"),
                             DATABASE_URL=db_url)
    return subprocess.run([sys.executable, "-m", "app.accounts.users", *args], env=env,
                          capture_output=True, text=True, cwd=helpers.ROOT)


def test_token_creates_the_user_and_prints_a_working_token_last(db_url, tmp_path):
    out = _cli(db_url, tmp_path, "token", "--user", "ci-bot", "--role", "radiologist")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    again = _cli(db_url, tmp_path, "token", "--user", "ci-bot", "--role", "radiologist")
    second = again.stdout.strip().splitlines()[-1]
    assert token.startswith(security.TOKEN_PREFIX) and second != token
    with db.session_scope(db_url) as s:
        user = users.find(s, "ci-bot")
        assert user.role == "radiologist" and user.password_hash is None
        assert users.token_user(s, token).id == user.id
        assert users.token_user(s, second).id == user.id
        hashes = list(s.scalars(select(ApiToken.token_hash)))
    assert security.token_hash(token) in hashes and token not in hashes
    app = create_app({"data_dir": tmp_path / "d", "database_url": db_url})
    resp = app.test_client().get("/queue", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200


def test_token_refuses_another_role_and_unknown_user_without_role(db_url, tmp_path):
    assert _cli(db_url, tmp_path, "token", "--user", "x", "--role", "clinician").returncode == 0
    out = _cli(db_url, tmp_path, "token", "--user", "x", "--role", "admin")
    assert out.returncode == 2 and "is a clinician" in out.stderr and not out.stdout
    out = _cli(db_url, tmp_path, "token", "--user", "y")
    assert out.returncode == 2 and "--role" in out.stderr


def test_bootstrap_creates_one_admin_once_with_a_random_password(db_url, tmp_path):
    first = _cli(db_url, tmp_path, "bootstrap")
    assert first.returncode == 0, first.stderr
    line = next(x for x in first.stdout.splitlines() if "one-time password:" in x)
    password = line.split("one-time password:")[1].strip()
    assert len(password) >= 16
    second = _cli(db_url, tmp_path, "bootstrap")
    assert "accounts exist" in second.stdout and password not in second.stdout
    with db.session_scope(db_url) as s:
        admin = users.find(s, "admin")
        assert admin.role == "admin" and admin.must_change_password
        assert security.verify_password(password, admin.password_hash)
        assert len(list(s.scalars(select(User)))) == 1
    # Another fresh database gets another password: there is no default one.
    other = _cli(db.default_url(tmp_path / "other"), tmp_path, "bootstrap")
    assert password not in other.stdout


def test_create_and_password_reset_print_one_time_passwords(db_url, tmp_path):
    out = _cli(db_url, tmp_path, "create", "--user", "rad", "--role", "radiologist")
    first = out.stdout.strip().splitlines()[-1]
    out = _cli(db_url, tmp_path, "password", "--user", "rad")
    second = out.stdout.strip().splitlines()[-1]
    assert first != second
    with db.session_scope(db_url) as s:
        rad = users.find(s, "rad")
        assert not security.verify_password(first, rad.password_hash)
        assert security.verify_password(second, rad.password_hash) and rad.must_change_password
        actions = [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["user_created", "password_set"]
    listing = _cli(db_url, tmp_path, "list").stdout
    assert "rad\tradiologist\tactive" in listing
    assert _cli(db_url, tmp_path, "password", "--user", "ghost").returncode == 2


def test_app_users_accept_the_cli_password_through_the_login_form(db_url, tmp_path):
    app = create_app({"data_dir": tmp_path / "d", "database_url": db_url})
    app.testing = True
    password = _cli(db_url, tmp_path, "create", "--user", "cli", "--role", "clinician"
                    ).stdout.strip().splitlines()[-1]
    client = app.test_client()
    resp = accounts.login(client, "cli", password)
    assert resp.status_code == 302 and resp.headers["Location"] == "/account/password"
