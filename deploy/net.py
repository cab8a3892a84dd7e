"""Waits and checks over the network: SSH reachable, /health answering."""

from __future__ import annotations

import json
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


class NotReadyError(Exception):
    """A host or service did not become ready in time."""


def ssh_banner(host: str, port: int = 22, timeout_s: float = 5.0) -> str:
    """Connect and read the server's identification line (``SSH-2.0-...``)."""
    with socket.create_connection((host, port), timeout=timeout_s) as conn:
        conn.settimeout(timeout_s)
        return conn.recv(256).decode("ascii", "replace").strip()


def wait_for_ssh(
    host: str,
    port: int = 22,
    timeout_s: float = 300.0,
    interval_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until ``host:port`` greets like an SSH server; return the seconds it took.

    A bare open port is not enough: right after boot the port may accept and close
    before sshd is ready, so the banner is what counts.
    """
    start = clock()
    last = "no answer"
    while True:
        try:
            banner = ssh_banner(host, port, timeout_s=min(interval_s, 10.0) or 1.0)
            if banner.startswith("SSH-"):
                return clock() - start
            last = f"unexpected greeting {banner[:40]!r}"
        except OSError as exc:
            last = str(exc) or type(exc).__name__
        if clock() - start + interval_s > timeout_s:
            raise NotReadyError(f"SSH on {host}:{port} not ready after {timeout_s:.0f}s ({last})")
        sleep(interval_s)


SELF_SIGNED_WARNING = (
    "deploy.sh: warning: {url} has a certificate this machine does not trust "
    "(the self-signed fallback: Let's Encrypt gave none). Browsers will warn; see the "
    "README, Deploy to AWS, HTTPS. Checked /health without verifying the certificate."
)


def get_health(
    url: str, timeout_s: float = 10.0, context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, Any]]:
    """GET a JSON health endpoint; return the status code and the parsed body."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as resp:  # noqa: S310
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        body = json.loads(raw or b"{}")
    except json.JSONDecodeError:
        body = {"raw": raw[:200].decode("utf-8", "replace")}
    return status, body if isinstance(body, dict) else {"raw": body}


def smoke_test(
    url: str,
    attempts: int = 10,
    delay_s: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
    allow_self_signed: bool = False,
) -> dict[str, Any]:
    """Poll ``url`` until it answers 200 with ``"status": "ok"``; return that body.

    Raises NotReadyError with the last answer, so a degraded deployment (model server
    unreachable from the frontend) is reported with the app's own explanation.
    With ``allow_self_signed``, a certificate that fails verification is warned
    about once on stderr and the check goes on without verifying it.
    """
    last = "no answer"
    context: ssl.SSLContext | None = None
    for attempt in range(1, attempts + 1):
        try:
            try:
                status, body = get_health(url, context=context)
            except urllib.error.URLError as exc:
                untrusted = isinstance(exc.reason, ssl.SSLCertVerificationError)
                if not (untrusted and allow_self_signed and context is None):
                    raise
                print(SELF_SIGNED_WARNING.format(url=url), file=sys.stderr)
                context = ssl._create_unverified_context()  # noqa: S323 (warned above)
                status, body = get_health(url, context=context)
            if status == 200 and body.get("status") == "ok":
                return body
            last = f"HTTP {status} {json.dumps(body, sort_keys=True)}"
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        if attempt < attempts:
            sleep(delay_s)
    raise NotReadyError(f"{url} not healthy after {attempts} attempts: {last}")
