"""SIGKILL of gunicorn right after predictions and reviews were acknowledged: after a
restart every acknowledged one is there (SQLite in WAL mode, and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import sys

import accounts
import helpers
import pytest
import requests
from sqlalchemy import select

from app.store import db
from app.store.db.models import Prediction, Review

pytestmark = pytest.mark.slow


def _start(env: dict, log) -> tuple:
    port = helpers.free_port()
    env = {**env, "PORT": str(port), "HOST": "127.0.0.1"}
    cmd = [sys.executable, "-m", "gunicorn", "-c", "app/platform/gunicorn.conf.py",
               "app.platform.wsgi:app"]
    proc = helpers.start(cmd, env, log)
    url = f"http://127.0.0.1:{port}"
    helpers.wait_until(f"{url}/health", proc, 60, lambda r: r.status_code in (200, 503))
    return proc, url


def test_acknowledged_work_survives_sigkill(model_server, db_url, tmp_path):
    env = helpers.server_env(PYTHONPATH=str(helpers.ROOT), MLFLOW_URL=model_server,
                             RADIO_DATA_DIR=str(tmp_path / "data"), DATABASE_URL=db_url,
                             RADIO_WORKERS="2", RADIO_THREADS="2")
    clin = {"Authorization": f"Bearer {accounts.cli_token(env, 'clin', 'clinician')}"}
    rad = {"Authorization": f"Bearer {accounts.cli_token(env, 'rad', 'radiologist')}"}
    proc, url = _start(env, tmp_path / "first.log")
    acked: list[str] = []
    reviewed: list[str] = []
    try:
        for i in range(4):
            image = helpers.synthetic_image("PNG", (200 + i, 200))
            resp = requests.post(f"{url}/predict", files={"file": ("x.png", image)},
                                 headers=clin, timeout=60)
            assert resp.status_code == 200, resp.text
            acked.append(resp.json()["id"])
            resp = requests.post(f"{url}/predictions/{acked[-1]}/review", headers=rad,
                                 data={"verdict": "corrected", "label": "Normal"},
                                 allow_redirects=False, timeout=30)
            assert resp.status_code == 302
            reviewed.append(acked[-1])
        os.killpg(proc.pid, signal.SIGKILL)  # no shutdown, no flush: a power cut
        proc.wait(timeout=30)
    finally:
        helpers.stop(proc)
    db.dispose_all()
    proc, url = _start(env, tmp_path / "second.log")
    try:
        with db.session_scope(db_url) as s:
            assert set(s.scalars(select(Prediction.id))) == set(acked)
            assert sorted(s.scalars(select(Review.prediction_id))) == sorted(reviewed)
        for pid in acked:
            page = requests.get(f"{url}/predictions/{pid}", headers=rad, timeout=30)
            assert page.status_code == 200 and "correction to Normal" in page.text
    finally:
        helpers.stop(proc)
