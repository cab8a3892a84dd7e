"""The lifecycle jobs' systemd units (roles/radio_common): rendered with the role's defaults,
verified by systemd-analyze, on the schedules of lifecycle.jobs, and each job run once
through its rendered unit (its ExecStart and environment file), every failure e-mailed to
a real STARTTLS SMTP server. The drift jobs run the real monitoring.drift_jobs
(the project root
comes first on the path), which fail loudly on a host without a reference or cases.
Their success paths run through the real units in test_converge.py (every job, on a fresh
deployment with its data placed) and through Airflow in tests/dags."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import helpers
import pytest
from deploy_helpers import ROOT, parse_unit, require, run

from lifecycle.jobs import SCHEDULES


def _instance(rendered: Path, out: Path, name: str) -> Path:
    """radio-job@NAME.service as systemd instantiates the template."""
    path = out / f"radio-job@{name}.service"
    shutil.copy(rendered / "radio-job@.service", path)
    return path


def test_timers_follow_the_schedules_of_lifecycle_jobs(rendered: Path) -> None:
    analyze = require("systemd-analyze")
    for name, (on_calendar, _) in SCHEDULES.items():
        timer = parse_unit(rendered / f"radio-job-{name}.timer")
        assert timer["Timer"]["OnCalendar"] == on_calendar, name
        assert timer["Timer"]["Unit"] == f"radio-job@{name}.service"
        assert timer["Install"]["WantedBy"] == "timers.target"
        check = run([analyze, "calendar", on_calendar])
        assert check.returncode == 0, check.stderr


def test_job_units_verify(rendered: Path, tmp_path: Path) -> None:
    analyze = require("systemd-analyze")
    for name in SCHEDULES:
        service = _instance(rendered, tmp_path, name)
        timer = tmp_path / f"radio-job-{name}.timer"
        shutil.copy(rendered / timer.name, timer)
        result = run([analyze, "verify", str(service), str(timer)])
        output = result.stdout + result.stderr
        if "Failed to initialize manager" in output or "Failed to setup" in output:
            pytest.skip(f"systemd-analyze cannot run here: {output.strip()[:200]}")
        assert result.returncode == 0, output
        assert "Unknown key" not in output and "ignoring" not in output, output


def _exec_start(rendered: Path, fake_root: Path, name: str) -> list[str]:
    service = parse_unit(rendered / "radio-job@.service")["Service"]
    argv = shlex.split(service["ExecStart"].replace("%i", name))
    # the host's venv python is this interpreter here (same project, same packages)
    assert argv[0] == f"{fake_root}/opt/radio/current/.venv/bin/python"
    assert argv[1:] == ["-m", "lifecycle", "--json", "--by", "systemd", "job", name]
    return [sys.executable, *argv[1:]]


@pytest.mark.slow
def test_each_job_runs_once_through_its_unit_and_failures_are_emailed(
        rendered: Path, fake_root: Path, env_file, smtp, tmp_path: Path) -> None:
    from lifecycle import model_versions as reg

    base = env_file(rendered / "jobs.env") | smtp.env | {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "RADIO_LIFECYCLE_LOG": str(tmp_path / "events.jsonl")}
    assert base["RADIO_HEALTH_URL"] == "http://127.0.0.1:8080/health"
    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    cl = reg.client(uri)
    cl.create_registered_model("radio-cxr")
    for _ in range(2):
        cl.create_model_version("radio-cxr", str(tmp_path / "m"))
    cl.set_registered_model_alias("radio-cxr", "production", "1")
    cl.set_registered_model_alias("radio-cxr", "candidate", "2")
    cl.set_model_version_tag("radio-cxr", "2", "deploy_tag", "production_ready")
    per_job = {
        # nothing answers there: the app is down
        "healthcheck": {"RADIO_HEALTH_URL": f"http://127.0.0.1:{helpers.free_port()}/health"},
        # a ready candidate, but no held-out data for the gate on this host
        "deploy-ready": {"MLFLOW_TRACKING_URI": uri},
        # the real statistics (monitoring.drift_jobs, first on the path from the project root):
        # no reference window built on this host, and no app database with cases
        "data-drift": {"RADIO_DATA_DIR": str(tmp_path / "data")},
        "model-drift": {"RADIO_DATA_DIR": str(tmp_path / "data")},
    }
    expected = {"healthcheck": (1, "[Radio] job healthcheck failed"),
                "deploy-ready": (1, "[Radio] job deploy-ready failed"),
                "data-drift": (1, "[Radio] job data-drift failed"),
                "model-drift": (1, "[Radio] job model-drift failed")}
    for name in SCHEDULES:
        before = len(smtp.messages)
        proc = subprocess.run(_exec_start(rendered, fake_root, name), cwd=ROOT,
                              env=base | per_job[name], capture_output=True, text=True,
                              timeout=300)
        status, subject = expected[name]
        assert proc.returncode == status, (name, proc.stdout, proc.stderr[-2000:])
        assert json.loads(proc.stdout)["job"] == name
        assert smtp.subjects()[before:] == [subject], name
    assert reg.alias_version(cl, "radio-cxr", "production") == "1"  # nothing moved
