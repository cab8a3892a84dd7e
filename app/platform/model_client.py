"""HTTP client of the MLflow model server (``/invocations``, ``/ping``, ``/version``).

One pooled keep-alive :class:`requests.Session` per worker process: the TCP handshake is
paid once, not per upload. The session is created lazily and re-created after a fork,
because sockets shared between gunicorn workers would interleave requests.

Retry policy: a POST is retried once, and only when the connection failed (refused,
reset, or dropped before an answer - typically a pooled keep-alive socket the server
already closed). Prediction has no side effect on the server, so a repeat is safe. A
read timeout is NOT retried: the server got the request and is busy, and a second
attempt would double the clinician's wait past MLFLOW_TIMEOUT_S.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np
import requests
from requests.adapters import HTTPAdapter

from app.platform import metrics
from app.platform.config import Config

# Defined with the other domain errors: app.platform.errors maps it without importing this
# module (and its metrics) into the gunicorn master.
from app.platform.failures import ModelServerError
from serving.wire import build_request

_lock = threading.Lock()
_session: requests.Session | None = None
_session_pid: int | None = None
_session_pool: int | None = None


def session(pool_size: int) -> requests.Session:
    """This process's shared session with a keep-alive pool of ``pool_size`` connections."""
    global _session, _session_pid, _session_pool
    with _lock:
        if _session is None or _session_pid != os.getpid() or _session_pool != pool_size:
            s = requests.Session()
            # Retries are ours (see module docstring), so the adapter makes none.
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            _session, _session_pid, _session_pool = s, os.getpid(), pool_size
        return _session


def invoke(cfg: Config, image: np.ndarray, heatmap: bool = True) -> Any:
    """POST one preprocessed image to ``/invocations`` and return the decoded JSON.

    Raises ModelServerError of kind "unreachable", "timeout" (no answer in time), "http"
    (an HTTP error) or "not_json" (a body that is not JSON). The body's shape is checked by
    :mod:`app.platform.contract`. Each call is timed, and each failure counted by kind
    (``app.platform.metrics``).
    """
    started = time.perf_counter()
    try:
        return _invoke(cfg, image, heatmap)
    except ModelServerError as exc:
        metrics.MODEL_ERRORS.labels(kind=exc.kind).inc()
        raise
    finally:
        metrics.MODEL_SECONDS.observe(time.perf_counter() - started)


def _invoke(cfg: Config, image: np.ndarray, heatmap: bool) -> Any:
    url = f"{cfg.mlflow_url}/invocations"
    body = build_request([image], heatmap=heatmap)
    timeout = (cfg.connect_timeout_s, cfg.mlflow_timeout_s)
    s = session(cfg.pool_size)
    resp = None
    for attempt in (1, 2):
        try:
            resp = s.post(url, json=body, timeout=timeout)
            break
        except requests.ConnectionError as exc:
            # ConnectTimeout is a ConnectionError too: the request never reached the server.
            if attempt == 1:
                time.sleep(0.05)  # let a restarting server finish binding its port
                continue
            raise ModelServerError(
                "The model server is unreachable; the service cannot analyse images now.",
                kind="unreachable") from exc
        except requests.Timeout as exc:
            raise ModelServerError(
                f"The model server did not answer within {cfg.mlflow_timeout_s:g} s; "
                "please try again in a moment.", kind="timeout",
            ) from exc
    assert resp is not None
    if resp.status_code != 200:
        raise ModelServerError(
            f"The model server failed (HTTP {resp.status_code}); please try again later.",
            kind="http")
    try:
        return resp.json()
    except ValueError as exc:
        raise ModelServerError("The model server sent an answer that is not JSON.",
                               kind="not_json") from exc


def ping(cfg: Config) -> tuple[bool, str]:
    """``(ok, detail)`` from the model server's ``/ping`` within the health timeout."""
    try:
        resp = session(cfg.pool_size).get(
            f"{cfg.mlflow_url}/ping", timeout=(cfg.health_timeout_s, cfg.health_timeout_s)
        )
    except requests.Timeout:
        return False, f"no answer to /ping within {cfg.health_timeout_s:g} s"
    except requests.ConnectionError:
        return False, "unreachable (connection failed)"
    if resp.status_code != 200:
        return False, f"/ping answered HTTP {resp.status_code}"
    return True, "ping ok"


def server_version(cfg: Config) -> str | None:
    """The MLflow version the model server reports on ``/version``, or None if unknown."""
    try:
        resp = session(cfg.pool_size).get(
            f"{cfg.mlflow_url}/version", timeout=(cfg.health_timeout_s, cfg.health_timeout_s)
        )
    except requests.RequestException:
        return None
    text = resp.text.strip()
    return text[:64] if resp.status_code == 200 and text else None
