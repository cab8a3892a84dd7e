"""``GET /health`` and ``GET /version``: honest about dependencies, quiet about internals.

/health checks each dependency the app needs to do its job (the model server answers its
``/ping`` and this worker's breaker is not failing predictions fast; the data directory is
writable with at least RADIO_MIN_FREE_MB free; the image store says it can store images,
a folder by the same test, an S3 bucket by answering HEAD; the database answers a query)
and answers
200 ``{"status": "ok"}`` when all pass, 503 ``{"status": "down"}`` when one fails. Anyone
gets only that. The details (each check, its reason, the model server's address) go to a
caller on the loopback address with no proxy header (an operator on the host, `make run`)
or one sending ``Authorization: Bearer <RADIO_HEALTH_TOKEN>``.

A hung model server never makes /health hang: the ping has RADIO_HEALTH_TIMEOUT_S, only one
thread per worker pings at a time (the others reuse its result or the last one), and a
result younger than one second is reused, so an answer takes at most about twice
RADIO_HEALTH_TIMEOUT_S. /predict holds at most RADIO_PREDICT_SLOTS of a worker's threads,
so threads stay free for /health and the page.

/version names the app version and the model that answered last to anyone; the Python and
MLflow versions and the model server's address only with the same details access.
"""

from __future__ import annotations

import hmac
import ipaddress
import platform
import time

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.platform import model_client, state
from app.platform.config import Config
from app.store import images, storage
from app.store.db import web as dbweb

bp = Blueprint("health", __name__)

PROBE_MAX_AGE_S = 1.0
# Headers a reverse proxy adds: with one, the loopback peer is the proxy, not an operator.
_PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


def details_allowed(cfg: Config) -> bool:
    """Loopback caller without proxy headers, or the health token."""
    auth = request.headers.get("Authorization", "")
    if cfg.health_token and auth.startswith("Bearer "):
        if hmac.compare_digest(auth[7:].strip().encode(), cfg.health_token.encode()):
            return True
    try:
        peer = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return peer.is_loopback and not any(h in request.headers for h in _PROXY_HEADERS)


def model_server_check(cfg: Config) -> tuple[bool, str]:
    """The model server's ``/ping`` outcome, at most one ping in flight per worker."""
    probe = state.get().probe
    if time.monotonic() - probe.at < PROBE_MAX_AGE_S:
        return probe.ok, probe.detail
    # A ping takes at most connect + read timeout (2 x RADIO_HEALTH_TIMEOUT_S): wait for the
    # one in flight a little longer than that, then answer with what is known.
    if probe.lock.acquire(timeout=2 * cfg.health_timeout_s + 0.5):
        try:
            if time.monotonic() - probe.at >= PROBE_MAX_AGE_S:  # nobody refreshed it meanwhile
                probe.ok, probe.detail = model_client.ping(cfg)
                probe.at = time.monotonic()
        finally:
            probe.lock.release()
    return probe.ok, probe.detail


def database_check() -> tuple[bool, str]:
    """The database answers a query (every page and upload needs it); this request's
    session, so a first request migrates it as any other would."""
    try:
        dbweb.session().execute(text("SELECT 1")).all()
    except (SQLAlchemyError, OSError) as exc:
        return False, f"database unreachable ({type(exc).__name__})"
    return True, "query ok"


@bp.get("/health")
def health() -> Response:
    """200 ok / 503 down; see the module docstring."""
    cfg: Config = current_app.config["RADIO"]
    model_ok, model_detail = model_server_check(cfg)
    breaker = state.get().breaker
    if model_ok:
        breaker.recovered()
    breaker_open = breaker.is_open
    storage_ok, storage_detail = storage.check(cfg.data_dir, cfg.min_free_mb)
    images_ok, images_detail = images.of(cfg).check(cfg.min_free_mb)
    db_ok, db_detail = database_check()
    up = model_ok and not breaker_open and storage_ok and images_ok and db_ok
    body: dict = {"status": "ok" if up else "down"}
    if details_allowed(cfg):
        body["checks"] = {
            "model_server": {"ok": model_ok and not breaker_open, "detail": model_detail,
                             "url": cfg.mlflow_url, "breaker_open": breaker_open},
            "storage": {"ok": storage_ok, "detail": storage_detail},
            "image_store": {"ok": images_ok, "detail": images_detail},
            "database": {"ok": db_ok, "detail": db_detail},
        }
    resp = jsonify(body)
    resp.status_code = 200 if up else 503
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/version")
def version() -> Response:
    """The app version and the last model; more with details access."""
    from app import __version__

    cfg: Config = current_app.config["RADIO"]
    body: dict = {"app": __version__, "last_model": state.get().last_model}
    if details_allowed(cfg):
        body["python"] = platform.python_version()
        body["model_server"] = {"url": cfg.mlflow_url,
                                "mlflow": model_client.server_version(cfg)}
    return jsonify(body)
