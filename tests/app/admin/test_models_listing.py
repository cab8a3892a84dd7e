"""app/admin/models_listing.py and the models page built on it: the registry is listed once, then
read from a snapshot (a background refresh after a task or a minute); versions are chosen
from a list; production's card figures shown; an unknown version is refused in words."""

from __future__ import annotations

import time
from pathlib import Path

import accounts
import pytest

from app.admin import lifecycle_cli as lifecycle
from app.admin import models_listing

# The first view (and each refresh) runs the lifecycle CLI (an MLflow client) as a child.
pytestmark = pytest.mark.slow


@pytest.fixture
def counted(tmp_path, monkeypatch):
    """A scratch registry (1-3, 2 in production with card metrics on its run) and a
    lifecycle command that counts its listings in ``tmp_path/lists``."""
    from lifecycle.model_versions import client

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    cl = client(uri)
    cl.create_registered_model("radio-cxr")
    exp = cl.create_experiment("train", artifact_location=str(tmp_path / "art"))
    run = cl.create_run(exp)
    for key, value in (("val_union_accuracy", 0.8125), ("val_union_covid_recall", 0.875),
                       ("val_nih-adult-normal_non_covid_called_covid", 0.0625)):
        cl.log_metric(run.info.run_id, key, value)
    for v in (1, 2, 3):
        cl.create_model_version("radio-cxr", str(tmp_path / f"m{v}"),
                                run_id=run.info.run_id if v == 2 else None,
                                tags={"git_commit": "abcdef0123456789"})
    cl.set_registered_model_alias("radio-cxr", "production", "2")
    script = tmp_path / "lifecycle.sh"
    script.write_text('case " $* " in *" list "*) echo x >>"$LISTS";; esac\n'
                      'exec "$PY" -m lifecycle "$@"\n')
    monkeypatch.setenv("LISTS", str(tmp_path / "lists"))
    monkeypatch.setenv("PY", __import__("sys").executable)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RADIO_LIFECYCLE_LOG", str(tmp_path / "events.jsonl"))
    return tmp_path


def _lists(folder: Path) -> int:
    path = folder / "lists"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _admin(make_app, folder: Path):
    app = make_app(mlflow_url="http://127.0.0.1:9", lifecycle_cmd=f"sh {folder / 'lifecycle.sh'}")
    accounts.add_user(app, "boss", "admin")
    client = app.test_client()
    accounts.login(client, "boss")
    return app, client


def _settle(client, deadline_s: float = 120) -> dict:
    """Wait for a background refresh to end; its state."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        state = client.get("/admin/models/listing").get_json()
        if not state["refreshing"]:
            return state
        time.sleep(0.3)
    raise AssertionError("the listing is still being refreshed")


def _post(client, **form):
    csrf = accounts.csrf_from(client.get("/admin/models").get_data(as_text=True))
    return client.post("/admin/models", data={"csrf_token": csrf, **form})


def test_views_read_the_snapshot_not_the_registry(make_app, counted):
    _, client = _admin(make_app, counted)
    first = client.get("/admin/models").get_data(as_text=True)
    assert _lists(counted) == 1  # the first view of a new installation lists once
    for _ in range(3):
        assert client.get("/admin/models").status_code == 200
    assert _lists(counted) == 1
    assert 'data-version="3"' in first and "Registry read " in first
    # versions are chosen from a list, not typed
    assert '<select name="version" id="version-choice">' in first
    assert '<option value="2">2 (production)</option>' in first
    assert '<option value="3">3</option>' in first
    # lineage tags a version lacks are left out, not shown as "?"
    assert "manifest ?" not in first and "git abcdef012345" in first


def test_production_card_figures_are_shown(make_app, counted):
    _, client = _admin(make_app, counted)
    html = client.get("/admin/models").get_data(as_text=True)
    card = html[html.index('id="production-card"'):]
    card = card[:card.index("</div>")]
    assert "In production: version 2" in card
    assert "81.2%" in card and "87.5%" in card and "6.2%" in card
    assert "version 2: training run" in card


def test_an_unknown_version_is_refused_in_words(make_app, counted):
    app, client = _admin(make_app, counted)
    resp = _post(client, action="prepare", version="42")
    assert resp.status_code == 400
    text = resp.get_data(as_text=True)
    assert "Version 42 is not in the registry (versions listed: 3, 2, 1)" in text
    assert "nothing was started" in text
    resp = _post(client, action="force", version="2", reason="again")
    assert resp.status_code == 400
    assert "Version 2 is already in production" in resp.get_data(as_text=True)
    with app.app_context():
        assert lifecycle.recent_tasks(app.config["RADIO"]) == []
    _settle(client)  # the refresh the unknown version started (it may be new) ends here


def test_a_finished_task_refreshes_the_listing_in_the_background(make_app, counted):
    app, client = _admin(make_app, counted)
    assert _post(client, action="prepare", version="3").status_code == 202
    with app.app_context():
        (task_id,) = [t["id"] for t in lifecycle.recent_tasks(app.config["RADIO"])]
    end = time.monotonic() + 120
    while client.get(f"/admin/models/tasks/{task_id}").get_json()["state"] == "running":
        assert time.monotonic() < end, "task still running"
        time.sleep(0.3)
    before = client.get("/admin/models/listing").get_json()["listed_at"]
    page = client.get("/admin/models").get_data(as_text=True)  # sees the finished task
    assert 'data-refreshing="1"' in page
    after = _settle(client)
    assert after["listed_at"] > before and _lists(counted) == 2
    page = client.get("/admin/models").get_data(as_text=True)
    assert '<option value="3">3 (candidate)</option>' in page


def test_a_failed_refresh_keeps_the_last_listing_and_says_why(make_app, counted, monkeypatch):
    app, client = _admin(make_app, counted)
    client.get("/admin/models")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{counted}/none/x.db")
    with app.app_context():
        found = models_listing.refresh(app.config["RADIO"])
    assert found.error and [v["version"] for v in found.versions] == ["3", "2", "1"]
    html = client.get("/admin/models").get_data(as_text=True)
    assert "The last reading of the registry failed" in html and 'data-version="2"' in html
