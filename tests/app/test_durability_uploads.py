"""SIGKILL of the whole app under load: no acknowledged record is lost, and the orphans the
kill leaves (uploads without a record, temporary files) are cleaned at the next start.

Real gunicorn, real model server (mlflow/serve.sh), real X-rays, real files on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import accounts
import helpers
import pytest
import requests

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


def _orphans(data_dir: Path) -> tuple[list[Path], list[Path]]:
    records = {p.stem for p in (data_dir / "predictions").glob("*.json")}
    uploads = [p for p in (data_dir / "uploads").glob("*") if not p.name.startswith(".")]
    temps = list(data_dir.rglob("*.tmp"))
    return [p for p in uploads if p.name.split(".")[0] not in records], temps


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
        url = f"http://127.0.0.1:{port}"
        helpers.wait_until(f"{url}/health", proc, 60, lambda r: r.ok)
        # Each start cleans what the previous kill left (one worker does it while the other
        # may already serve): nothing orphaned remains.
        end = time.monotonic() + 30
        while _orphans(data_dir) != ([], []) and time.monotonic() < end:
            time.sleep(0.2)
        assert _orphans(data_dir) == ([], [])
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
        uploads, temps = _orphans(data_dir)
        found_orphans += len(uploads) + len(temps)
    assert len(acked) > 0
    # Every acknowledged answer has its record and its upload, byte for byte.
    for rid in acked:
        record = json.loads((data_dir / "predictions" / f"{rid}.json").read_text())
        assert record["result"]["id"] == rid
        upload = data_dir / "uploads" / f"{rid}.png"
        assert hashlib.sha256(upload.read_bytes()).hexdigest() == record["upload"]["sha256"]
    print(f"acknowledged {len(acked)}, orphans left by {ROUNDS} kills and cleaned: "
          f"{found_orphans}")
