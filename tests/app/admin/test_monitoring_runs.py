"""app/admin/monitoring_runs.py: an admin runs each monitoring job from the Monitoring page; the
job (the real ``python -m monitoring.drift_jobs``) runs detached, its result is recorded and shown,
its start audited; CSRF and the admin role are required."""

from __future__ import annotations

import json
import re
import shutil
import time

import accounts
import pytest
from helpers import ROOT
from sqlalchemy import select

from app.admin import monitoring_runs
from app.store.db import web as dbweb
from app.store.db.models import AuditEntry

# The model-drift job's child imports MLflow (seconds).
pytestmark = pytest.mark.slow


@pytest.fixture
def job_env(monkeypatch, tmp_path):
    """The jobs' settings: a copy of the shipped registry, the model card in a file (no
    artefact download), no drift reference (the data job must say so)."""
    registry = tmp_path / "mlflow.db"
    shutil.copy(ROOT / "mlflow" / "mlflow.db", registry)
    uri = f"sqlite:///{registry}"
    for name, value in (("MLFLOW_TRACKING_URI", uri), ("MLFLOW_REGISTRY_URI", uri)):
        monkeypatch.setenv(name, value)
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"accuracy": 0.7, "covid_recall": 0.8,
                                "normals_called_covid": 0.05}))
    monkeypatch.setenv("RADIO_MODEL_CARD", str(card))
    for name in ("RADIO_DRIFT_REFERENCE", "RADIO_MONITORING_DIR", "RADIO_RETRAIN_ON_DRIFT"):
        monkeypatch.delenv(name, raising=False)
    # The job's MLflow run goes to a folder of this test, not to the project's mlruns/.
    from mlflow import MlflowClient

    MlflowClient(uri).create_experiment("radio-monitoring",
                                        artifact_location=(tmp_path / "runs").as_uri())


def _admin(make_app):
    app = make_app(mlflow_url="http://127.0.0.1:9")
    accounts.add_user(app, "boss", "admin")
    client = app.test_client()
    accounts.login(client, "boss")
    csrf = accounts.csrf_from(client.get("/admin/monitoring").get_data(as_text=True))
    return app, client, csrf


def _ended(client, run_id: str, deadline_s: float = 180) -> dict:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        found = client.get(f"/admin/monitoring/runs/{run_id}").get_json()
        if found["state"] != "running":
            return found
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still running")


def _start(client, csrf, kind: str) -> str:
    resp = client.post("/admin/monitoring/run", data={"csrf_token": csrf, "kind": kind})
    assert resp.status_code == 303
    found = re.search(r"started=([0-9a-f]+)", resp.headers["Location"])
    assert found, resp.headers["Location"]
    return found.group(1)


def test_the_model_job_runs_from_the_page_and_its_report_is_shown(make_app, job_env):
    app, client, csrf = _admin(make_app)
    run_id = _start(client, csrf, "model")
    page = client.get(f"/admin/monitoring?started={run_id}").get_data(as_text=True)
    assert "Job started." in page and f'data-run="{run_id}"' in page
    done = _ended(client, run_id)
    assert done["state"] == "done", done
    assert done["summary"] == "no drift: too few validated cases to judge model drift"
    assert done["kind"] == "model" and done["by"] == "boss"
    page = client.get("/admin/monitoring").get_data(as_text=True)
    section = page[page.index('id="model-drift"'):]
    assert "too few validated cases to judge model drift" in section
    assert f'data-run="{run_id}" data-state="done"' in page
    with app.app_context():
        entry = dbweb.session().scalars(
            select(AuditEntry).where(AuditEntry.action == "monitoring_run")).one()
    assert entry.target == "model" and entry.detail == {"run": run_id}


def test_a_job_that_cannot_run_says_why(make_app, job_env):
    _, client, csrf = _admin(make_app)
    run_id = _start(client, csrf, "data")
    failed = _ended(client, run_id)
    assert failed["state"] == "failed"
    assert failed["error"].startswith("error: data-drift job: ")
    assert "RADIO_DRIFT_REFERENCE is not set" in failed["error"]
    page = client.get("/admin/monitoring").get_data(as_text=True)
    assert f'data-run="{run_id}" data-state="failed"' in page
    assert "RADIO_DRIFT_REFERENCE is not set" in page


def test_one_run_of_a_kind_at_a_time(make_app, job_env):
    app, client, csrf = _admin(make_app)
    first = _start(client, csrf, "model")
    resp = client.post("/admin/monitoring/run", data={"csrf_token": csrf, "kind": "model"})
    assert resp.status_code == 303 and f"busy={first}" in resp.headers["Location"]
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "That job is already running; nothing new was started." in page
    _ended(client, first)
    with app.app_context():
        assert [r["id"] for r in monitoring_runs.recent(app.config["RADIO"])] == [first]


def test_csrf_role_and_kind_are_checked(make_app):
    app, client, csrf = _admin(make_app)
    assert client.post("/admin/monitoring/run", data={"kind": "model"}).status_code in (
        400, 403)
    resp = client.post("/admin/monitoring/run", data={"csrf_token": csrf, "kind": "rm -rf"})
    assert resp.status_code == 303 and "started=" not in resp.headers["Location"]
    accounts.add_user(app, "rad", "radiologist")
    other = app.test_client()
    accounts.login(other, "rad")
    rad_csrf = accounts.csrf_from(other.get("/history").get_data(as_text=True))
    assert other.post("/admin/monitoring/run",
                      data={"csrf_token": rad_csrf, "kind": "model"}).status_code == 403
    assert client.get("/admin/monitoring/runs/..%2F..").status_code == 404
    with app.app_context():
        assert monitoring_runs.recent(app.config["RADIO"]) == []
