"""Accounts for tests: users, tokens and logged-in clients (no test logic here)."""

from __future__ import annotations

import re
import subprocess
import sys

PASSWORD = "correct horse battery staple"  # a test-only password, set on each test's DB


def add_user(app, username: str, role: str, password: str | None = PASSWORD) -> int:
    """Create an active user (its password already chosen, not one-time); its id."""
    from app.accounts import users
    from app.store.db import web as dbweb

    with app.app_context():
        session = dbweb.session()
        user = users.create_user(session, username, role)
        if password:
            users.set_password(session, user, password, one_time=False)
        session.commit()
        return user.id


def token(app, username: str, role: str) -> str:
    """An API token of ``username`` (created with ``role`` if needed)."""
    from app.accounts import users
    from app.store.db import web as dbweb

    with app.app_context():
        session = dbweb.session()
        user = users.find(session, username) or users.create_user(session, username, role)
        value = users.issue_token(session, user)
        session.commit()
        return value


def bearer_client(app, username: str = "dr-test", role: str = "clinician"):
    """A test client sending ``Authorization: Bearer`` with every request."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token(app, username, role)}"
    return client


def csrf_from(html: str) -> str:
    """The CSRF token of the first form (or meta tag) of a page."""
    match = re.search(r'name="csrf[-_]token" (?:value|content)="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client, username: str, password: str = PASSWORD):
    """Log ``client`` in through the login form; the response of the POST."""
    csrf = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf})


def cli_token(env: dict[str, str], username: str, role: str) -> str:
    """``python -m app.accounts.users token`` in a subprocess with ``env``: its last line."""
    out = subprocess.run([sys.executable, "-m", "app.accounts.users", "token", "--user", username,
                          "--role", role], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]  # say why, not only the exit status
    return out.stdout.strip().splitlines()[-1]


def cli_create(env: dict[str, str], username: str, role: str) -> str:
    """``python -m app.accounts.users create`` in a subprocess: the one-time password it printed."""
    out = subprocess.run([sys.executable, "-m", "app.accounts.users", "create", "--user", username,
                          "--role", role], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def client_as(app, username: str):
    """A test client logged in as ``username`` and its page's CSRF token."""
    client = app.test_client()
    login(client, username)
    return client, csrf_from(client.get("/history").get_data(as_text=True))
