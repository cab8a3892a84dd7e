"""dags/radio_lifecycle.py with Airflow itself (3.x, in its own venv: `make airflow-venv`):
every DAG is parsed by a real DagBag and run once with ``dag.test()`` against the real
``lifecycle`` and ``monitoring`` packages, on what a fresh deployment has: the app's
(empty) database, a registry with the shipped versions and a candidate marked ready, and a
few real films of every source and split placed where the jobs read them (the gate's val
splits, the drift reference's train splits). Every job succeeds; the promotion's verdict
is e-mailed (a real STARTTLS SMTP server), nothing else is."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import helpers
import pytest
from helpers import ROOT

from lifecycle.jobs import SCHEDULES

pytestmark = pytest.mark.slow
VENV = Path(os.environ.get("RADIO_AIRFLOW_VENV", ROOT / ".venv-airflow"))

RUN = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
out = {"dags": {d: {"schedule": str(bag.dags[d].schedule)} for d in bag.dags}, "runs": {}}
# deploy-ready first: the drift jobs then judge whatever production has become
order = ["radio_deploy_ready", "radio_data_drift", "radio_model_drift", "radio_healthcheck"]
for dag_id in sorted(bag.dags, key=lambda d: order.index(d) if d in order else len(order)):
    run = bag.dags[dag_id].test()
    out["runs"][dag_id] = {"state": str(run.state),
                           "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()}}
print("RESULT " + json.dumps(out))
"""


class _Health(http.server.BaseHTTPRequestHandler):
    """The app's /health as a healthy frontend answers it (the app itself is tested
    elsewhere; here the healthcheck job's success path)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({"status": "ok"}).encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def airflow() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no Airflow venv at {VENV}: run `make airflow-venv` (.ci/run does)")
    return VENV


@pytest.fixture()
def healthy_app():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()


def test_every_job_succeeds_through_airflow_with_the_real_packages(
        airflow, smtp, tmp_path, data_dir, real_sources, healthy_app):
    from sources_subset import copy_subset

    from app.store import db
    from lifecycle import model_versions as reg
    from training.sources import SOURCES

    # the app's database, migrated as the playbook's bootstrap does; no case yet
    db.migrate(db.default_url(data_dir), data_dir=data_dir)
    # The shipped registry, through a copy of its database (its artefact paths are relative
    # to the project root, the workers' working directory); the monitoring runs' files go
    # to this test's folder.
    registry = tmp_path / "mlflow.db"
    shutil.copy(ROOT / "mlflow" / "mlflow.db", registry)
    uri = f"sqlite:///{registry}"
    cl = reg.client(uri)
    cl.create_experiment("radio-monitoring", artifact_location=str(tmp_path / "runs"))
    production = reg.alias_version(cl, "radio-cxr", "production")
    reg.prepare(cl, "radio-cxr", "6", "test")
    sources = copy_subset(real_sources, tmp_path / "sources")
    home = tmp_path / "airflow"
    env = helpers.server_env(**smtp.env) | {
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "PYTHONPATH": str(ROOT),
        "MLFLOW_TRACKING_URI": uri, "RADIO_LIFECYCLE_LOG": str(tmp_path / "events.jsonl"),
        "RADIO_HEALTH_URL": healthy_app, "RADIO_DATA_DIR": str(data_dir),
        "RADIO_GATE_DATA": ":".join(str(sources / name) for name in SOURCES),
        "RADIO_DRIFT_DATA": str(sources),
        "RADIO_DRIFT_REFERENCE": str(tmp_path / "monitoring" / "drift-reference.npz")}
    for leftover in ("DATABASE_URL", "RADIO_IMAGE_STORE", "RADIO_MONITORING_DIR",
                     "RADIO_MODEL_CARD", "RADIO_RETRAIN_ON_DRIFT"):
        env.pop(leftover, None)
    migrate = subprocess.run([str(airflow / "bin" / "airflow"), "db", "migrate"], env=env,
                             capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    proc = subprocess.run([str(airflow / "bin" / "python"), "-c", RUN, str(ROOT / "dags")],
                          env=env, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(line[0].removeprefix("RESULT "))
    ids = {f"radio_{name.replace('-', '_')}": cron for name, (_, cron) in SCHEDULES.items()}
    assert {d: v["schedule"] for d, v in result["dags"].items()} == ids
    states = {d: r["state"] for d, r in result["runs"].items()}
    assert states == {"radio_healthcheck": "success", "radio_deploy_ready": "success",
                      "radio_data_drift": "success", "radio_model_drift": "success"}, \
        proc.stderr[-5000:]
    events = {e["job"]: e for e in map(json.loads, (tmp_path / "events.jsonl").read_text()
                                       .splitlines()) if e["action"] == "job"}
    assert {job: e["ok"] for job, e in events.items()} == {
        "deploy-ready": True, "data-drift": True, "model-drift": True, "healthcheck": True}
    # the gate judged version 6 on the placed val splits, and said so by e-mail
    verdict = events["deploy-ready"]["detail"]
    now = "6" if verdict == "deployed" else production
    assert smtp.subjects() == [{"deployed": "[Radio] radio-cxr version 6 promoted to production",
                                "refused": "[Radio] promotion of radio-cxr version 6 refused"}[
                                    verdict]]
    assert reg.alias_version(cl, "radio-cxr", "production") == now
    # both drift reports judge that production; the reference was built for it
    reports = {kind: json.loads((data_dir / "monitoring" / f"latest-{kind}-drift.json")
                                .read_text()) for kind in ("data", "model")}
    assert {k: (r["model_version"], r["drift"]) for k, r in reports.items()} == {
        "data": (now, False), "model": (now, False)}
    from monitoring.reference import Reference

    assert Reference.load(tmp_path / "monitoring" / "drift-reference.npz").model_version == now
