"""``GET /health`` and ``GET /version``.

/health answers 200 whenever the web app itself works, with ``"status": "degraded"`` when the
model server is down: the app still serves the page and explains the outage, so a load
balancer must not take it out of rotation or restart it for a fault it cannot fix. Monitors
alert on ``status != "ok"`` (or on ``model_server.ok``). A 503 means the app itself is
broken (its data directory cannot be written).
"""

from __future__ import annotations

import os
import platform

from flask import Blueprint, Response, current_app, jsonify

from app import model_client, predict
from app.config import Config

bp = Blueprint("health", __name__)


def _data_dir_ok(cfg: Config) -> tuple[bool, str]:
    try:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return False, f"data directory unusable: {exc.strerror}"
    if not os.access(cfg.data_dir, os.W_OK | os.X_OK):
        return False, "data directory is not writable"
    return True, "ok"


@bp.get("/health")
def health() -> Response:
    """App and model-server health; see the module docstring for the status codes."""
    cfg: Config = current_app.config["RADIO"]
    app_ok, app_detail = _data_dir_ok(cfg)
    model_ok, model_detail = model_client.ping(cfg)
    body = {
        "status": "ok" if app_ok and model_ok else "degraded",
        "app": "ok" if app_ok else app_detail,
        "model_server": {"url": cfg.mlflow_url, "ok": model_ok, "detail": model_detail},
    }
    resp = jsonify(body)
    resp.status_code = 200 if app_ok else 503
    return resp


@bp.get("/version")
def version() -> Response:
    """Versions of the app, Python and (when reachable) the model server."""
    from app import __version__

    cfg: Config = current_app.config["RADIO"]
    return jsonify(
        {
            "app": __version__,
            "python": platform.python_version(),
            "model_server": {
                "url": cfg.mlflow_url,
                "mlflow": model_client.server_version(cfg),
                "last_model": predict.last_model,
            },
        }
    )
