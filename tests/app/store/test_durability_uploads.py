"""SIGKILL of the whole app under load: no acknowledged record is lost, and the orphans the
kill leaves (stored images without a row, temporary files) are cleaned at the next start
while every image a row refers to is kept.

Every upload is a different image (the same X-ray with a few pixels changed), so an image
stored by a killed request is referred to by no other row: a true orphan. To be sure each
kill leaves some, the test holds the SQLite write lock (as a slow commit would) until
requests have stored their images and wait to commit their rows, then kills: exactly the
crash between storing and committing that the retention pass exists for.

Real gunicorn, real model server (mlflow/serve.sh), real X-rays, real files on disk.
"""

from __future__ import annotations

import io
import itertools
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import accounts
import helpers
import numpy as np
import pytest
import requests
from PIL import Image
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.platform.config import load_config

CLIENTS = 8
ROUNDS = 2
LOCK_WAIT_S = 8.0  # under the app's SQLite busy_timeout (10 s): nobody gets a 507 yet


class Uploads:
    """Distinct PNGs of one X-ray (a counter written into the first row of pixels), and
    the bytes sent for each acknowledged request id."""

    def __init__(self, xray: bytes) -> None:
        self.pixels = np.asarray(Image.open(io.BytesIO(xray)).convert("L")).copy()
        self.counter = itertools.count()
        self.lock = threading.Lock()
        self.acked: dict[str, bytes] = {}

    def next(self) -> bytes:
        with self.lock:
            n = next(self.counter)
        pixels = self.pixels.copy()
        pixels[0, :8] = np.frombuffer(n.to_bytes(8, "big"), np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels, "L").save(buf, format="PNG", compress_level=1)
        return buf.getvalue()


def _load(url: str, uploads: Uploads, stop: threading.Event, token: str) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    while not stop.is_set():
        data = uploads.next()
        try:
            r = session.post(f"{url}/predict", files={"file": ("x.png", data)}, timeout=30)
        except requests.RequestException:
            return  # the server was killed
        if r.status_code == 200:
            uploads.acked[r.json()["id"]] = data


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


def _hold_write_lock(cfg) -> sqlite3.Connection:
    """Take the database's write lock, as a long transaction of another process would."""
    conn = sqlite3.connect(make_url(cfg.db_url).database, isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    return conn


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_record_and_orphans_are_cleaned(
        model_server, tmp_path, xray_path):
    uploads = Uploads(xray_path.read_bytes())
    data_dir = tmp_path / "data"
    orphans_left: list[int] = []
    for round_ in range(ROUNDS + 1):
        port = helpers.free_port()
        env = helpers.server_env(PYTHONPATH=str(helpers.ROOT), PORT=str(port),
                                 HOST="127.0.0.1", MLFLOW_URL=model_server,
                                 RADIO_DATA_DIR=str(data_dir), RADIO_ORPHAN_GRACE_S="0",
                                 RADIO_METRICS_PORT="0")
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
        # ... and every image an acknowledged answer refers to is still there.
        for rid, sent in uploads.acked.items():
            assert helpers.kept(cfg, rid)[1] == sent, rid
        if round_ == ROUNDS:
            helpers.stop(proc)
            break
        stop = threading.Event()
        token = accounts.cli_token(env, "kill-test", "clinician")
        clients = [threading.Thread(target=_load, args=(url, uploads, stop, token))
                   for _ in range(CLIENTS)]
        for c in clients:
            c.start()
        acked_before = len(uploads.acked)
        end = time.monotonic() + 60
        while len(uploads.acked) < acked_before + CLIENTS and time.monotonic() < end:
            time.sleep(0.1)
        lock = _hold_write_lock(cfg)
        try:
            # Requests now store their image and wait for the lock to commit the row.
            end = time.monotonic() + LOCK_WAIT_S
            while not _orphans(cfg)[0] and time.monotonic() < end:
                time.sleep(0.1)
            os.killpg(proc.pid, signal.SIGKILL)  # master and workers, mid-request
            proc.wait(timeout=30)
        finally:
            lock.rollback()
            lock.close()
        proc.log_file.close()
        stop.set()
        for c in clients:
            c.join(timeout=60)
        orphans, _temps = _orphans(cfg)
        assert not set(orphans) & {r["image_sha256"] for r in
                                    (helpers.kept(cfg, rid)[0] for rid in uploads.acked)}
        orphans_left.append(len(orphans))
    # Each kill left at least one real orphan, and the next start removed it (above).
    assert all(n >= 1 for n in orphans_left), orphans_left
    assert len(uploads.acked) >= ROUNDS * CLIENTS
    print(f"acknowledged {len(uploads.acked)}, orphans left by {ROUNDS} kills and cleaned: "
          f"{orphans_left}")
