"""lifecycle/jobs.py: each job's verdict, and the e-mail a failure or a drift sends (to a
real STARTTLS SMTP server). Most drift-job tests use a TEST DOUBLE of
``monitoring.drift_jobs`` (tests/lifecycle/doubles) to choose the verdict; the last one calls the
real one."""

from __future__ import annotations

import sys
from pathlib import Path

import helpers
import pytest
from lifecycle_helpers import settings_for

from lifecycle import events, jobs, operations
from lifecycle.settings import Settings

DOUBLES = Path(__file__).resolve().parent / "doubles"


@pytest.fixture
def monitoring_double(monkeypatch):
    """``monitoring.drift_jobs`` resolved to the test double for this test only."""
    import monitoring.drift_jobs  # noqa: F401  # the real one, so that monkeypatch puts it back after

    monkeypatch.syspath_prepend(str(DOUBLES))
    for name in [m for m in sys.modules if m == "monitoring" or m.startswith("monitoring.")]:
        monkeypatch.delitem(sys.modules, name)
    return monkeypatch


def test_schedules_cover_every_job_once():
    assert set(jobs.SCHEDULES) == set(jobs.JOBS)
    for on_calendar, cron in jobs.SCHEDULES.values():
        assert on_calendar and len(cron.split()) == 5


def test_healthcheck_failure_sends_the_email(smtp, tmp_path):
    port = helpers.free_port()  # nothing listens there
    s = Settings(health_url=f"http://127.0.0.1:{port}/health", events_log=tmp_path / "e.jsonl")
    result = jobs.run_job("healthcheck", s)
    assert not result["ok"] and "unreachable" in result["detail"]
    assert smtp.subjects() == ["[Radio] job healthcheck failed"]
    last = events.read(s.events_log)[-1]
    assert last["action"] == "job" and last["job"] == "healthcheck" and last["ok"] is False


@pytest.mark.slow
def test_healthcheck_of_an_app_whose_model_server_is_down(smtp, tmp_path):
    """The real app under gunicorn answers /health 503 'down': the job fails and mails."""
    port = helpers.free_port()
    env = helpers.server_env(PORT=str(port), HOST="127.0.0.1", RADIO_DATA_DIR=str(tmp_path),
                             MLFLOW_URL=f"http://127.0.0.1:{helpers.free_port()}")
    app = helpers.start(helpers.gunicorn_cmd(), env, tmp_path / "gunicorn.log")
    try:
        helpers.wait_until(f"http://127.0.0.1:{port}/health", app, 60,
                           lambda r: r.status_code in (200, 503))
        s = Settings(health_url=f"http://127.0.0.1:{port}/health",
                     events_log=tmp_path / "e.jsonl")
        result = jobs.run_job("healthcheck", s)
    finally:
        helpers.stop(app)
    assert not result["ok"] and result["http"] == 503 and result["status"] == "down"
    assert "model_server" in result["detail"] or "model" in result["detail"]
    assert smtp.subjects() == ["[Radio] job healthcheck failed"]


def test_deploy_ready_without_a_ready_candidate_does_nothing(bare_registry, smtp):
    result = jobs.run_job("deploy-ready", bare_registry)
    assert result["ok"] and result["action"] == "none" and smtp.messages == []


def test_deploy_ready_that_cannot_run_the_gate_fails_loudly(bare_registry, smtp):
    operations.prepare(bare_registry, "3", by="ds")
    result = jobs.run_job("deploy-ready", bare_registry)
    assert not result["ok"] and "RADIO_GATE_DATA" in result["detail"]
    assert smtp.subjects() == ["[Radio] job deploy-ready failed"]


@pytest.mark.parametrize("kind", ["data", "model"])
def test_drift_is_emailed_and_no_drift_is_quiet(kind, monitoring_double, smtp, tmp_path):
    s = settings_for(tmp_path / "reg", tmp_path)
    monitoring_double.setenv("RADIO_TEST_DRIFT", "none")
    quiet = jobs.run_job(f"{kind}-drift", s)
    assert quiet["ok"] and quiet["drift"] is False and smtp.messages == []
    monitoring_double.setenv("RADIO_TEST_DRIFT", kind)
    loud = jobs.run_job(f"{kind}-drift", s)
    assert loud["ok"] and loud["drift"] is True
    (msg,) = smtp.messages
    assert msg["subject"] == f"[Radio] {kind} drift detected"
    assert f"test double: {kind} drift DETECTED" in msg["body"]


def test_drift_statistics_that_fail_are_a_failed_job(monitoring_double, smtp, tmp_path):
    s = settings_for(tmp_path / "reg", tmp_path)
    monitoring_double.setenv("RADIO_TEST_DRIFT", "raise")
    result = jobs.run_job("model-drift", s)
    assert not result["ok"] and "unavailable" in result["detail"]
    assert smtp.subjects() == ["[Radio] job model-drift failed"]


def test_the_cli_exit_status_follows_the_job(tmp_path, monkeypatch):
    from lifecycle import cli

    monkeypatch.setenv("RADIO_HEALTH_URL", f"http://127.0.0.1:{helpers.free_port()}/health")
    monkeypatch.setenv("RADIO_LIFECYCLE_LOG", str(tmp_path / "e.jsonl"))
    monkeypatch.delenv("RADIO_SMTP_HOST", raising=False)
    assert cli.main(["--json", "job", "healthcheck"]) == 1


def test_the_drift_jobs_call_the_real_monitoring_statistics(smtp, tmp_path, monkeypatch):
    """No double: ``monitoring.drift_jobs`` itself. Without a reference window the data-drift
    statistics cannot run; the job fails with their own reason and mails it."""
    s = settings_for(tmp_path / "reg", tmp_path)
    monkeypatch.delenv("RADIO_DRIFT_REFERENCE", raising=False)
    monkeypatch.setenv("RADIO_DATA_DIR", str(tmp_path / "data"))
    result = jobs.run_job("data-drift", s)
    assert not result["ok"] and "RADIO_DRIFT_REFERENCE is not set" in result["detail"]
    assert smtp.subjects() == ["[Radio] job data-drift failed"]
