"""app/platform/run_local.sh (what `make run` starts): both servers up, then both down on Ctrl-C."""

import os
import signal
import socket
import subprocess
import time

import accounts
import helpers
import pytest
import requests
from helpers import ROOT

SCRIPT = ROOT / "app" / "platform" / "run_local.sh"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _env(**extra: str) -> dict[str, str]:
    return helpers.server_env(RADIO_VENV=str(ROOT / ".venv"), **extra)


def test_refuses_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        out = subprocess.run(["bash", str(SCRIPT)], env=_env(PORT=str(port),
                             MODEL_SERVER_PORT=str(helpers.free_port())),
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in out.stderr


def _time_wait_port() -> int:
    """A port nothing listens on, with a connection of a stopped server in TIME-WAIT on it
    (the side that closes first keeps TIME-WAIT: here the server's side, as after Ctrl-C).
    The server sets SO_REUSEADDR as gunicorn and uvicorn do: Linux lets a new socket bind
    over a TIME-WAIT one only when both have it."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()
        client.recv(1)  # the FIN has arrived: the server side is in FIN-WAIT-2
        client.close()  # ... then TIME-WAIT
    out = subprocess.run(["ss", "-tan", f"sport = :{port}"], capture_output=True, text=True)
    assert "TIME-WAIT" in out.stdout, out.stdout
    return port


def test_a_port_in_time_wait_is_free():
    """`make run` again within a minute of Ctrl-C: the model port's old connections are in
    TIME-WAIT; the check passes it and stops only at the web port, which really listens."""
    lingering = _time_wait_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        out = subprocess.run(["bash", str(SCRIPT)], env=_env(PORT=str(port),
                             MODEL_SERVER_PORT=str(lingering)),
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in out.stderr
    assert f"port {lingering}" not in out.stderr


@pytest.mark.slow
def test_starts_both_then_stops_both_on_ctrl_c(tmp_path):
    app_port, model_port = helpers.free_port(), helpers.free_port()
    env = _env(PORT=str(app_port), MODEL_SERVER_PORT=str(model_port),
               RADIO_DATA_DIR=str(tmp_path / "data"))
    # A terminal's shell starts `make run` with SIGINT at its default; a test runner started
    # in the background (`cmd &` in a script) hands down an ignored SIGINT, which bash can
    # then never trap. A Python handler is not inherited through exec: the script gets the
    # default, as from a terminal.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = helpers.start(["bash", str(SCRIPT)], env, tmp_path / "run.log")
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        end = time.monotonic() + 300
        while "Radio is running" not in (tmp_path / "run.log").read_text():
            assert proc.poll() is None, helpers.log_tail(proc)
            assert time.monotonic() < end, helpers.log_tail(proc)
            time.sleep(0.5)
        log = (tmp_path / "run.log").read_text()
        assert f"http://127.0.0.1:{app_port}/" in log
        # A fresh clone prints how to log in: the first admin's one-time password.
        password = log.split("one-time password:")[1].split()[0]
        # One connection per request: a gthread worker that served a second request on a
        # kept-alive connection was seen to outlive SIGTERM by gunicorn's graceful timeout.
        page = requests.get(f"http://127.0.0.1:{app_port}/login", timeout=10)
        resp = requests.post(f"http://127.0.0.1:{app_port}/login", timeout=10,
                             allow_redirects=False, cookies=page.cookies,
                             data={"username": "admin", "password": password,
                                   "csrf_token": accounts.csrf_from(page.text)})
        assert resp.status_code == 302 and resp.headers["Location"] == "/account/password"
        health = requests.get(f"http://127.0.0.1:{app_port}/health", timeout=10).json()
        assert health["status"] == "ok"  # asked on loopback: with details
        assert health["checks"]["model_server"]["url"] == f"http://127.0.0.1:{model_port}"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        assert proc.wait(timeout=60) == 130
        assert not _listening(app_port) and not _listening(model_port)
    finally:
        helpers.stop(proc)
