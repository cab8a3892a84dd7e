"""app/store/db/web.py (test_web.py is taken by app/platform/web.py): a request's database session,
migrated on first use unless gunicorn's master already migrated it (then Alembic never
enters the worker); the master's step itself (app/platform/gunicorn.conf.py) under a real gunicorn,
working and failing."""

from __future__ import annotations

import subprocess
import sys

import helpers
import requests

from app.store import db

# A fresh interpreter: which modules one request's session loads, and the users it sees.
_REQUEST = """
import sys
from app import create_app
from app.store.db import web
from app.store.db.models import User
from sqlalchemy import select
app = create_app()
with app.test_request_context("/"):
    users = web.session().scalars(select(User.username)).all()
print("alembic" in sys.modules, len(users))
"""


def _one_request(data_dir, **env: str) -> tuple[bool, int]:
    done = subprocess.run([sys.executable, "-c", _REQUEST], cwd=helpers.ROOT,
                          env=helpers.server_env(RADIO_DATA_DIR=str(data_dir), **env),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    alembic_loaded, users = done.stdout.split()
    return alembic_loaded == "True", int(users)


def test_a_worker_told_the_database_is_migrated_never_loads_alembic(tmp_path):
    data = tmp_path / "data"
    url = db.default_url(data)
    subprocess.run([sys.executable, "-m", "app.accounts.users", "migrate"], cwd=helpers.ROOT,
                   env=helpers.server_env(RADIO_DATA_DIR=str(data)), check=True,
                   capture_output=True, timeout=120)
    assert db.current_revision(url) is not None
    assert _one_request(data, **{db.MIGRATED_ENV: db.migrated_mark(url)}) == (False, 0)


def test_without_the_mark_the_first_request_migrates(tmp_path):
    data = tmp_path / "data"
    # A mark for another database says nothing about this one.
    other = db.migrated_mark(db.default_url(tmp_path / "other"))
    assert _one_request(data, **{db.MIGRATED_ENV: other}) == (True, 0)
    assert db.current_revision(db.default_url(data)) is not None


def test_the_mark_never_holds_the_url():
    url = "postgresql+psycopg://radio:s3cret@db.internal/radio"
    assert "s3cret" not in db.migrated_mark(url) and "internal" not in db.migrated_mark(url)
    assert db.migrated_mark(url) != db.migrated_mark(url.replace("s3cret", "other"))


def _gunicorn(tmp_path, **env: str) -> tuple[subprocess.Popen, str]:
    port = helpers.free_port()
    # No model server, no login: the API document answers without either and without the
    # database, which is all these tests need.
    proc = helpers.start(helpers.gunicorn_cmd(), helpers.server_env(
        PORT=str(port), RADIO_DATA_DIR=str(tmp_path / "data"), RADIO_WORKERS="1",
        RADIO_METRICS_PORT="0", MLFLOW_URL=f"http://127.0.0.1:{helpers.free_port()}", **env),
        tmp_path / "gunicorn.log")
    url = f"http://127.0.0.1:{port}"
    try:
        helpers.wait_until(f"{url}/openapi.json", proc, 60, lambda r: r.ok)
    except BaseException:
        helpers.stop(proc)
        raise
    return proc, url


def test_gunicorn_migrates_before_any_worker_answers(tmp_path):
    proc, url = _gunicorn(tmp_path)
    try:
        # Not one request has touched the database: the master's child migrated it.
        assert db.current_revision(db.default_url(tmp_path / "data")) is not None
        assert requests.get(f"{url}/login", timeout=10).status_code == 200
    finally:
        helpers.stop(proc)
    assert "migration failed" not in (tmp_path / "gunicorn.log").read_text()


def test_gunicorn_starts_when_the_database_cannot_be_migrated(tmp_path):
    # A SQLite file under a path that is a file: every migration attempt fails.
    (tmp_path / "blocker").write_text("not a folder")
    bad = f"sqlite:///{tmp_path / 'blocker' / 'radio.db'}"
    proc, url = _gunicorn(tmp_path, DATABASE_URL=bad)
    try:
        assert requests.get(f"{url}/openapi.json", timeout=10).json()["openapi"]
        log = (tmp_path / "gunicorn.log").read_text()
        assert "database migration failed; workers will retry" in log
        assert "blocker" in log  # the reason, for the operator
    finally:
        helpers.stop(proc)
