"""dags/radio_lifecycle.py with Airflow itself (3.x, in its own venv: `make airflow-venv`):
every DAG is parsed by a real DagBag and run once with ``dag.test()``; a failing job fails
its task and e-mails (a real STARTTLS SMTP server), detected drift e-mails and succeeds.
The drift jobs use the TEST DOUBLE of monitoring.drift_jobs (tests/lifecycle/doubles)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import helpers
import pytest
from helpers import ROOT

from lifecycle.jobs import SCHEDULES

pytestmark = pytest.mark.slow
VENV = Path(os.environ.get("RADIO_AIRFLOW_VENV", ROOT / ".venv-airflow"))
DOUBLES = ROOT / "tests" / "lifecycle" / "doubles"

RUN = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
out = {"dags": {d: {"schedule": str(bag.dags[d].schedule)} for d in bag.dags}, "runs": {}}
for dag_id, dag in sorted(bag.dags.items()):
    run = dag.test()
    out["runs"][dag_id] = {"state": str(run.state),
                           "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()}}
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def airflow() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no Airflow venv at {VENV}: run `make airflow-venv` (.ci/run does)")
    return VENV


def test_every_job_runs_once_through_airflow(airflow, smtp, tmp_path):
    from lifecycle import model_versions as reg

    home = tmp_path / "airflow"
    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    cl = reg.client(uri)
    cl.create_registered_model("radio-cxr")
    for _ in range(2):
        cl.create_model_version("radio-cxr", str(tmp_path / "m"))
    cl.set_registered_model_alias("radio-cxr", "production", "1")
    cl.set_registered_model_alias("radio-cxr", "candidate", "2")
    cl.set_model_version_tag("radio-cxr", "2", "deploy_tag", "production_ready")
    env = helpers.server_env(**smtp.env) | {
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "PYTHONPATH": f"{DOUBLES}:{ROOT}",
        "MLFLOW_TRACKING_URI": uri, "RADIO_LIFECYCLE_LOG": str(tmp_path / "events.jsonl"),
        "RADIO_HEALTH_URL": f"http://127.0.0.1:{helpers.free_port()}/health",
        "RADIO_TEST_DRIFT": "data"}
    migrate = subprocess.run([str(airflow / "bin" / "airflow"), "db", "migrate"], env=env,
                             capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    proc = subprocess.run([str(airflow / "bin" / "python"), "-c", RUN, str(ROOT / "dags")],
                          env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(line[0].removeprefix("RESULT "))
    ids = {f"radio_{name.replace('-', '_')}": cron for name, (_, cron) in SCHEDULES.items()}
    assert {d: v["schedule"] for d, v in result["dags"].items()} == ids
    states = {d: r["state"] for d, r in result["runs"].items()}
    assert states == {"radio_healthcheck": "failed",  # nothing answers: the app is down
                      "radio_deploy_ready": "failed",  # ready candidate, no gate data here
                      "radio_data_drift": "success",  # drift found and e-mailed
                      "radio_model_drift": "success"}  # no model drift: quiet
    assert sorted(smtp.subjects()) == sorted(["[Radio] job healthcheck failed",
                                              "[Radio] job deploy-ready failed",
                                              "[Radio] data drift detected"])
    assert reg.alias_version(cl, "radio-cxr", "production") == "1"
