"""The scheduled jobs: healthcheck, deploy-ready, data drift, model drift.

    python -m lifecycle job NAME      (one run; systemd timers and Airflow DAGs call it)

Each job returns ``{"ok": bool, ...}``; a failure (the job's own verdict, or any error
while running it) sends an e-mail (:mod:`lifecycle.notify`), and so does what a person must
act on: a refused or completed promotion (:mod:`lifecycle.operations`), detected drift.
Schedules live in :data:`SCHEDULES`, one place for the systemd timers (``OnCalendar``) and
the Airflow DAGs (cron), which a test checks agree.

The drift statistics are the monitoring component's: ``monitoring.drift_jobs.data_drift_job()``
and ``monitoring.drift_jobs.model_drift_job()``, each returning ``{"drift": bool, "summary":
str, ...}``, imported only when the job runs.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from typing import Any

import requests

from lifecycle import events, notify
from lifecycle.settings import Settings

log = logging.getLogger("radio.lifecycle.jobs")

# name -> (systemd OnCalendar, Airflow cron): healthcheck every 5 minutes, deploy-ready
# hourly, drift daily (data at 02:00, model at 03:00, UTC).
SCHEDULES: dict[str, tuple[str, str]] = {
    "healthcheck": ("*:0/5", "*/5 * * * *"),
    "deploy-ready": ("hourly", "0 * * * *"),
    "data-drift": ("*-*-* 02:00:00", "0 2 * * *"),
    "model-drift": ("*-*-* 03:00:00", "0 3 * * *"),
}
MONITORING_MODULE = "monitoring.drift_jobs"


def healthcheck(s: Settings) -> dict[str, Any]:
    """The app's /health (which also asks the model server) must answer ``ok``."""
    try:
        resp = requests.get(s.health_url, timeout=10)
        body = resp.json() if resp.headers.get("content-type", "").startswith(
            "application/json") else {}
    except (requests.RequestException, ValueError) as exc:
        return {"ok": False, "detail": f"{s.health_url} unreachable: {exc}"}
    status = body.get("status", "")
    ok = resp.status_code == 200 and status == "ok"
    return {"ok": ok, "http": resp.status_code, "status": status,
            "detail": json.dumps(body)[:2000]}


def deploy_ready(s: Settings) -> dict[str, Any]:
    """Deploy the candidate marked production_ready, through the gate (nothing else)."""
    from lifecycle import model_versions as reg
    from lifecycle import operations

    candidate = reg.ready_candidate(reg.client(s.tracking_uri), s.model_name)
    if candidate is None:
        return {"ok": True, "action": "none", "detail": "no candidate marked production_ready"}
    result = operations.deploy(s, candidate, by="deploy-ready job")
    # a refusal is the gate doing its work (it was e-mailed), not a failed job
    return {"ok": True, "action": "deployed" if result["deployed"] else "refused",
            "version": candidate, "reasons": (result["decision"] or {}).get("reasons", [])}


def _drift(kind: str) -> Callable[[Settings], dict[str, Any]]:
    def job(s: Settings) -> dict[str, Any]:
        monitoring = importlib.import_module(MONITORING_MODULE)
        result = getattr(monitoring, f"{kind}_drift_job")()
        if not isinstance(result, dict) or "drift" not in result:
            raise TypeError(f"{MONITORING_MODULE}.{kind}_drift_job returned {result!r}")
        if result["drift"]:
            notify.send(f"{kind} drift detected",
                        f"{result.get('summary', '')}\n\n{json.dumps(result, default=str)[:5000]}")
        return {"ok": True, **result}

    job.__doc__ = f"{kind.capitalize()} drift ({MONITORING_MODULE}); e-mail when detected."
    return job


JOBS: dict[str, Callable[[Settings], dict[str, Any]]] = {
    "healthcheck": healthcheck,
    "deploy-ready": deploy_ready,
    "data-drift": _drift("data"),
    "model-drift": _drift("model"),
}


def run_job(name: str, s: Settings) -> dict[str, Any]:
    """Run one job once: its result, with ``ok``; failures e-mailed and logged."""
    try:
        result = JOBS[name](s)
    except Exception as exc:  # noqa: BLE001 - a job reports every failure, by e-mail
        log.exception("job %s failed", name)
        result = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    result = {"job": name, **result}
    if not result["ok"]:
        notify.send(f"job {name} failed", json.dumps(result, indent=1, default=str))
    events.record(s.events_log, "job", job=name, ok=result["ok"],
                  detail=str(result.get("detail", result.get("action", "")))[:500])
    return result
