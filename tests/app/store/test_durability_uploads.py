"""SIGKILL of the whole app under load: no acknowledged record is lost, and the orphans the
kill leaves (stored images without a row, temporary files) are cleaned at the next start.

Real gunicorn, real model server (mlflow/serve.sh), real X-rays, real files on disk.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import accounts
import helpers
import pytest
import requests
from sqlalchemy import select

from app.platform.config import load_config

CLIENTS = 8
ROUNDS = 2


def _load(
    url: str, data: bytes, stop: threading.Event, acked: list[str], token: str
) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    while not stop.is_set():
        try:
            r = session.post(f"{url}/predict", files={"file": ("x.png", data)}, timeout=30)
        except requests.RequestException:
            return  # the server was killed
        if r.status_code == 200:
            acked.append(r.json()["id"])


def _orphans(cfg) -> tuple[list[str], list[Path]]:
    """Stored images no prediction row refers to; temporary files."""
    from app.store import db
    from app.store.db.models import Prediction

    try:
        with db.session_scope(cfg.db_url) as s:
            rows = set(s.scalars(select(Prediction.image_sha256)))
    finally:
        db.dispose_all()
    images = [i.sha256 for i in helpers.stored_images(cfg) if i.sha256 not in rows]
    return images, [*cfg.data_dir.rglob("*.tmp"), *cfg.data_dir.rglob("*.del")]


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_record_and_orphans_are_cleaned(
        model_server, tmp_path, xray_path):
    data = xray_path.read_bytes()
    data_dir = tmp_path / "data"
    acked: list[str] = []
    found_orphans = 0
    for round_ in range(ROUNDS + 1):
        port = helpers.free_port()
        env = helpers.server_env(PYTHONPATH=str(helpers.ROOT), PORT=str(port),
                                 HOST="127.0.0.1", MLFLOW_URL=model_server,
                                 RADIO_DATA_DIR=str(data_dir), RADIO_ORPHAN_GRACE_S="0")
        proc = helpers.start(helpers.gunicorn_cmd(), env, tmp_path / f"gunicorn{round_}.log")
        cfg = load_config(environ=env)
        url = f"http://127.0.0.1:{port}"
        helpers.wait_until(f"{url}/health", proc, 60, lambda r: r.ok)
        # Each start cleans what the previous kill left (one worker does it while the other
        # may already serve): nothing orphaned remains.
        end = time.monotonic() + 30
        while _orphans(cfg) != ([], []) and time.monotonic() < end:
            time.sleep(0.2)
        assert _orphans(cfg) == ([], [])
        if round_ == ROUNDS:
            helpers.stop(proc)
            break
        stop = threading.Event()
        token = accounts.cli_token(env, "kill-test", "clinician")
        clients = [threading.Thread(target=_load, args=(url, data, stop, acked, token))
                   for _ in range(CLIENTS)]
        for c in clients:
            c.start()
        time.sleep(4)
        os.killpg(proc.pid, signal.SIGKILL)  # master and workers, mid-request
        proc.wait(timeout=30)
        proc.log_file.close()
        stop.set()
        for c in clients:
            c.join(timeout=60)
        orphans, temps = _orphans(cfg)
        found_orphans += len(orphans) + len(temps)
    assert len(acked) > 0
    # Every acknowledged answer has its row and its image, byte for byte.
    for rid in acked:
        row, image = helpers.kept(cfg, rid)
        assert row is not None and row["status"] in ("ok", "not_xray"), rid
        assert image == data
    print(f"acknowledged {len(acked)}, orphans left by {ROUNDS} kills and cleaned: "
          f"{found_orphans}")
