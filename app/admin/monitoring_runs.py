"""Monitoring jobs started by an admin from the Monitoring page.

A job (``python -m lifecycle job data-drift|model-drift``, the command the timers run) takes from
seconds to minutes and imports MLflow and ONNX Runtime, which the app never does: it runs
detached, with the app's own database, data and image-store settings, under
``<data dir>/monitoring-runs/<id>/`` (``run.json`` what and who, ``out.txt`` its summary
line, ``err.txt``, ``rc`` once it ended). The request answers at once (a redirect to the
page, which shows the run's state); the job writes its report where the page reads it; the
start is in the audit log. One run of a kind at a time.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue

from app.accounts import audit
from app.accounts.auth import client_ip, current_user, requires
from app.admin import detached
from app.platform.config import PROJECT_ROOT, Config
from app.store.db import web as dbweb

bp = Blueprint("monitoring_runs", __name__)
KINDS = ("data", "model")


def runs_dir(cfg: Config) -> Path:
    """Where runs live."""
    return Path(cfg.data_dir) / "monitoring-runs"


def _env(cfg: Config) -> dict[str, str]:
    """The app's environment, with the settings the app was given (they may differ from
    the environment's in tests and under a supervisor) so the job reads what the app does."""
    env = dict(os.environ) | {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
                              "RADIO_DATA_DIR": str(cfg.data_dir)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT),
                                                    env.get("PYTHONPATH", "")) if p)
    for var, value in (("DATABASE_URL", cfg.database_url),
                       ("RADIO_IMAGE_STORE", cfg.image_store)):
        if value:
            env[var] = value
    return env


def state(cfg: Config, run_id: str) -> dict[str, Any] | None:
    """A run: what, who, when, ``running`` / ``done`` / ``failed``, its summary or error."""
    if not run_id.isalnum():
        return None
    folder = runs_dir(cfg) / run_id
    try:
        info = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return None
    rc_path = folder / "rc"
    rc = rc_path.read_text().strip() if rc_path.is_file() else ""
    out = (folder / "out.txt").read_text().strip() if (folder / "out.txt").is_file() else ""
    err = (folder / "err.txt").read_text() if (folder / "err.txt").is_file() else ""
    run_state = "running" if not rc else "done" if rc == "0" else "failed"
    summary, error = "", ""
    try:  # the job's result, one JSON document (python -m lifecycle --json job ...)
        result = json.loads(out) if out else {}
    except ValueError:
        result = {}
    if run_state == "done":
        summary = f"{'DRIFT' if result.get('drift') else 'no drift'}: {result.get('summary', '')}"
    elif run_state == "failed":
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        error = (f"error: {result['job']} job: {result.get('detail', '')}" if result.get("job")
                 else errors[-1] if errors else err.strip()[-300:])
    return {**info, "state": run_state, "ended": rc_path.stat().st_mtime if rc else None,
            "summary": summary, "error": error}


def recent(cfg: Config, limit: int = 6) -> list[dict[str, Any]]:
    """The latest runs, newest first."""
    folder = runs_dir(cfg)
    if not folder.is_dir():
        return []
    found = [r for r in (state(cfg, p.name) for p in folder.iterdir()) if r]
    return sorted(found, key=lambda r: r["started"], reverse=True)[:limit]


def start(cfg: Config, kind: str, by: str) -> str:
    """Start the ``kind`` job detached; its run id."""
    run_id = secrets.token_hex(8)
    detached.start(runs_dir(cfg) / run_id, ("run.json", {"id": run_id, "kind": kind, "by": by,
                                                         "started": time.time()}),
                   [sys.executable, "-m", "lifecycle", "--json", "job", f"{kind}-drift"],
                   _env(cfg), "out.txt")
    return run_id


@bp.post("/admin/monitoring/run")
@requires("admin")
def run() -> ResponseReturnValue:
    """Start one monitoring job (audited); back to the page, which shows its state."""
    me = current_user()
    assert me is not None
    cfg = current_app.config["RADIO"]
    kind = request.form.get("kind", "")
    if kind not in KINDS:
        return redirect(url_for("monitoring.page", error="unknown-job"), 303)
    busy = [r for r in recent(cfg, limit=50) if r["kind"] == kind and r["state"] == "running"]
    if busy:
        return redirect(url_for("monitoring.page", busy=busy[0]["id"]), 303)
    run_id = start(cfg, kind, me.username)
    session = dbweb.session()
    audit.log(session, "monitoring_run", user_id=me.id, target=kind, ip=client_ip(),
              detail={"run": run_id})
    session.commit()
    return redirect(url_for("monitoring.page", started=run_id), 303)


@bp.get("/admin/monitoring/runs/<run_id>")
@requires("admin")
def run_state(run_id: str) -> ResponseReturnValue:
    """A run's state as JSON."""
    found = state(current_app.config["RADIO"], run_id)
    if found is None:
        abort(404)
    return jsonify(found)
