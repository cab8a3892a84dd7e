"""Starting, watching, stopping and measuring local server processes.

The one process helper of the project: the benchmarks (``make bench*``) and the tests
(through ``tests/helpers.py``) start the model server, gunicorn and friends with it.
Each process runs in its own session, so stopping it stops its children too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(
    cmd: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT
) -> subprocess.Popen:
    """Start ``cmd`` in ``cwd`` (the project root), in its own session, output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = open(log, "wb")  # noqa: SIM115 - owned by the process, closed in stop()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
    )
    proc.log_file = fh  # type: ignore[attr-defined]
    proc.log_path = log  # type: ignore[attr-defined]
    return proc


def stop(proc: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace_s)
            break
        except subprocess.TimeoutExpired:
            continue
    log_file = getattr(proc, "log_file", None)
    if log_file is not None:
        log_file.close()


def log_tail(proc: subprocess.Popen, lines: int = 30) -> str:
    """The last lines of a started process's log, for failure messages."""
    text = Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]
    return "\n".join(text.splitlines()[-lines:])


def _status_200(resp: requests.Response) -> bool:
    return resp.status_code == 200


def wait_until(
    url: str,
    proc: subprocess.Popen,
    deadline_s: float = 180,
    ok: Callable[[requests.Response], bool] = _status_200,
    poll_s: float = 0.05,
) -> float:
    """Seconds until ``ok(GET url)``; raises with the log if the process dies or time is up."""
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}:\n{log_tail(proc)}")
        try:
            if ok(requests.get(url, timeout=5)):
                return time.monotonic() - t0
        except requests.RequestException:
            pass
        if time.monotonic() - t0 > deadline_s:
            raise RuntimeError(f"{url} not ready within {deadline_s:.0f}s:\n{log_tail(proc)}")
        time.sleep(poll_s)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def _status_mb(pid: int, field: str) -> float:
    """A memory field of /proc/PID/status in MB (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MB (0 if it is gone)."""
    return _status_mb(pid, "VmRSS")


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of one process since it started (VmHWM), in MB (0 if gone)."""
    return _status_mb(pid, "VmHWM")


def bearer(env: dict[str, str], user: str = "bench-clinician") -> dict[str, str]:
    """``Authorization`` header with a new API token of a clinician of the app run with
    ``env`` (same database): ``python -m app.accounts.users token`` prints it as its last line."""
    out = subprocess.run(
        [sys.executable, "-m", "app.accounts.users", "token", "--user", user,
         "--role", "clinician"],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return {"Authorization": f"Bearer {out.stdout.strip().splitlines()[-1]}"}
