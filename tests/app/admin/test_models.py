"""app/admin/models.py and app/admin/lifecycle_cli.py: the models page drives the real lifecycle CLI
(in a child process) on a scratch registry; a forced deploy is audited with its reason."""

from __future__ import annotations

import time

import accounts
import pytest
from sqlalchemy import select

from app.admin import lifecycle_cli
from app.store.db import web as dbweb
from app.store.db.models import AuditEntry

# Each page load runs the lifecycle CLI (an MLflow client) in a child process.
pytestmark = pytest.mark.slow


@pytest.fixture
def registry_env(tmp_path, monkeypatch):
    """A scratch registry with versions 1-3 (2 in production), named by the environment."""
    from lifecycle.model_versions import client

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    cl = client(uri)
    cl.create_registered_model("radio-cxr")
    for v in (1, 2, 3):
        cl.create_model_version("radio-cxr", str(tmp_path / f"m{v}"))
    cl.set_registered_model_alias("radio-cxr", "production", "2")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RADIO_LIFECYCLE_LOG", str(tmp_path / "events.jsonl"))
    return cl


def _admin(make_app):
    app = make_app(mlflow_url="http://127.0.0.1:9")
    accounts.add_user(app, "boss", "admin")
    client = app.test_client()
    accounts.login(client, "boss")
    return app, client


def _wait(client, task_id: str, deadline_s: float = 120) -> dict:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        state = client.get(f"/admin/models/tasks/{task_id}").get_json()
        if state["state"] != "running":
            return state
        time.sleep(0.5)
    raise AssertionError(f"task {task_id} still running")


def _post(client, **form):
    csrf = accounts.csrf_from(client.get("/admin/models").get_data(as_text=True))
    return client.post("/admin/models", data={"csrf_token": csrf, **form})


def test_page_lists_versions_with_aliases(make_app, registry_env):
    _, client = _admin(make_app)
    html = client.get("/admin/models").get_data(as_text=True)
    assert 'data-version="3"' in html and 'data-version="1"' in html
    assert "production" in html and "Registry unavailable" not in html


def test_forced_deploy_moves_the_alias_and_is_audited(make_app, registry_env):
    app, client = _admin(make_app)
    resp = _post(client, action="force", version="3", reason="urgent fix for site B")
    assert resp.status_code == 202
    with app.app_context():
        (task_id,) = [t["id"] for t in lifecycle_cli.recent_tasks(app.config["RADIO"])]
    done = _wait(client, task_id)
    assert done["state"] == "done", done
    assert done["result"]["action"] == "forced" and done["result"]["by"] == "boss"
    assert str(registry_env.get_model_version_by_alias("radio-cxr", "production").version) == "3"
    with app.app_context():
        entry = dbweb.session().scalars(
            select(AuditEntry).where(AuditEntry.action == "model_force")).one()
    assert entry.target == "3" and entry.detail["reason"] == "urgent fix for site B"
    page = client.get("/admin/models").get_data(as_text=True)
    assert f'data-task="{task_id}" data-state="done"' in page


def test_a_request_the_lifecycle_refuses_shows_its_message(make_app, registry_env):
    app, client = _admin(make_app)
    assert _post(client, action="rollback").status_code == 202  # nothing to roll back to
    with app.app_context():
        (task_id,) = [t["id"] for t in lifecycle_cli.recent_tasks(app.config["RADIO"])]
    failed = _wait(client, task_id)
    assert failed["state"] == "failed" and "no 'previous' version" in failed["error"]


def test_bad_forms_start_nothing(make_app, registry_env):
    app, client = _admin(make_app)
    assert _post(client, action="force", version="3", reason=" ").status_code == 400
    assert _post(client, action="prepare", version="x").status_code == 400
    assert _post(client, action="reboot").status_code == 400
    assert _post(client, action="train", mode="finetune").status_code == 400  # no production
    with app.app_context():
        assert lifecycle_cli.recent_tasks(app.config["RADIO"]) == []
        assert lifecycle_cli.task(app.config["RADIO"], "../../etc") is None


def test_an_unreachable_registry_is_a_message_not_a_crash(make_app, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/none/x.db")
    _, client = _admin(make_app)
    resp = client.get("/admin/models")
    assert resp.status_code == 200
    assert "Registry unavailable" in resp.get_data(as_text=True)


def test_training_arguments_from_the_page():
    assert lifecycle_cli.arguments("train", mode="scratch", reference="/d/ref/v2") == [
        "train", "--mode", "scratch", "--reference", "/d/ref/v2"]
    assert lifecycle_cli.arguments("train", mode="finetune", production="/d/prod/v3") == [
        "train", "--mode", "finetune", "--production", "/d/prod/v3"]
    assert lifecycle_cli.arguments("deploy") == ["deploy"]
    assert lifecycle_cli.arguments("force", "4", "why") == ["force", "4", "--reason", "why"]
    assert lifecycle_cli.arguments("train", mode="scratch", epochs="2", folds="3")[-4:] == [
        "--epochs", "2", "--folds", "3"]
    for bad in ({"epochs": "0"}, {"epochs": "x"}, {"folds": "1"}):
        with pytest.raises(ValueError):
            lifecycle_cli.arguments("train", mode="scratch", **bad)


def test_a_training_launched_from_the_page_reports_progress_and_figures(
        make_app, registry_env, tmp_path, monkeypatch):
    from datasets_helpers import reference

    ref = reference(tmp_path / "reference")
    monkeypatch.setenv("RADIO_TRAIN_REGISTRY", str(tmp_path / "trained"))
    app, client = _admin(make_app)
    resp = _post(client, action="train", mode="scratch", reference=str(ref), epochs="1",
                 folds="2")
    assert resp.status_code == 202
    with app.app_context():
        (task_id,) = [t["id"] for t in lifecycle_cli.recent_tasks(app.config["RADIO"])]
    seen: list[dict] = []
    end = time.monotonic() + 600
    while time.monotonic() < end:
        state = client.get(f"/admin/models/tasks/{task_id}").get_json()
        if state["progress"]:
            seen.append(state["progress"])
        if state["state"] != "running":
            break
        time.sleep(0.3)
    assert state["state"] == "done", state
    assert state["result"]["mode"] == "scratch" and state["result"]["version"] == "1"
    assert state["progress"]["stage"] == "done"
    assert {"union", "alpha", "beta"} <= set(state["result"]["val"])
    assert {p["stage"] for p in seen} & {"data", "cross-validation", "packaging", "evaluation"}
