"""app/platform/timeouts.py and the worker's socket timeouts, on a real gunicorn with real slow
sockets.

Issue 12: eight slow clients froze /, /health and /version for as long as they held their
connections, and a body shorter than its Content-Length waited forever.
"""

from __future__ import annotations

import json
import socket
import time

import accounts
import helpers
import pytest
import requests

BODY_TIMEOUT_S = 3
LOG: list = []  # the module gunicorn's log file
TOKEN: list = []  # a clinician's API token on the module gunicorn


@pytest.fixture(scope="module")
def slow_gunicorn(model_server, tmp_path_factory):
    """gunicorn with short body/read timeouts, talking to the real model server; yields its
    URL (its log file is LOG[0])."""
    port = helpers.free_port()
    env = helpers.server_env(PYTHONPATH=str(helpers.ROOT), PORT=str(port), HOST="127.0.0.1",
                             MLFLOW_URL=model_server, RADIO_WORKERS="2",
                             RADIO_DATA_DIR=str(tmp_path_factory.mktemp("slow-data")),
                             RADIO_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S), RADIO_READ_TIMEOUT_S="2",
                             RADIO_HEADER_TIMEOUT_S="3")
    log = tmp_path_factory.mktemp("logs") / "gunicorn.log"
    LOG.append(log)
    proc = helpers.start(helpers.gunicorn_cmd(), env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        helpers.wait_until(f"{url}/health", proc, 60, lambda r: r.ok)
        TOKEN.append(accounts.cli_token(env, "slow-clinician", "clinician"))
        yield url
    finally:
        helpers.stop(proc)


def _status_and_json(answer: bytes) -> tuple[int, dict, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body), head.decode("latin-1")


@pytest.mark.parametrize("every_s", [0.5, None], ids=["trickling body", "body shorter than "
                                                                       "Content-Length"])
def test_slow_or_short_body_gets_408_json(slow_gunicorn, every_s):
    client = helpers.SlowUpload(slow_gunicorn, every_s=every_s, token=TOKEN[0])
    client.start()
    client.join(timeout=60)
    status, body, head = _status_and_json(client.answer)
    assert status == 408
    assert body["error"] == (f"The upload did not arrive within {BODY_TIMEOUT_S} s; check the "
                             "connection and try again.")
    assert "Connection: close" in head


def test_eight_slow_clients_do_not_block_the_page_or_health(slow_gunicorn, xray_path):
    clients = [helpers.SlowUpload(slow_gunicorn, token=TOKEN[0]) for _ in range(8)]
    for c in clients:
        c.start()
    time.sleep(0.5)  # all eight are connected and sending
    assert all(c.is_alive() for c in clients)
    # Bounded by the client's timeout, not measured: a frozen server fails these.
    assert requests.get(f"{slow_gunicorn}/health", timeout=5).status_code == 200
    assert requests.get(f"{slow_gunicorn}/login", timeout=5).status_code == 200  # the page
    assert requests.get(f"{slow_gunicorn}/version", timeout=5).status_code == 200
    fast = requests.post(f"{slow_gunicorn}/predict", timeout=30,
                         headers={"Authorization": f"Bearer {TOKEN[0]}"},
                         files={"file": ("x.png", xray_path.read_bytes(), "image/png")})
    assert fast.status_code in (200, 503), fast.text  # 503 only if all slots are busy
    for c in clients:
        c.join(timeout=60)
    statuses = [_status_and_json(c.answer)[0] for c in clients]
    assert all(s in (408, 503) for s in statuses) and 408 in statuses


def test_stalled_headers_are_dropped_and_the_thread_freed(slow_gunicorn):
    host, port = slow_gunicorn.removeprefix("http://").split(":")
    stalled = [socket.create_connection((host, int(port)), timeout=30) for _ in range(8)]
    try:
        for s in stalled:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        assert requests.get(f"{slow_gunicorn}/health", timeout=5).status_code == 200
        for s in stalled:
            assert s.recv(65536) == b""  # closed by the server after its read timeout
    finally:
        for s in stalled:
            s.close()
    log = LOG[0].read_text()
    assert "closed a connection whose request did not arrive in time" in log
    assert "Traceback" not in log


def test_trickling_headers_are_cut_off_at_the_header_deadline(slow_gunicorn):
    host, port = slow_gunicorn.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        s.settimeout(0.5)
        closed = False
        for _ in range(60):  # one header byte every 0.5 s: each read well within 2 s
            try:
                s.sendall(b"X")
                closed = s.recv(65536) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
            if closed:
                break
        assert closed  # within 30 s; the header deadline is 3 s


def test_the_deadline_is_not_installed_outside_gunicorn(offline_client):
    # The Flask test client has no gunicorn socket: reading works as usual.
    resp = offline_client.post("/predict", data=b"x" * 10, content_type="text/plain")
    assert resp.status_code == 415
