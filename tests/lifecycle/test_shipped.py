"""lifecycle/shipped.py against a real tracking server (mlflow/tracking_server.sh: `mlflow server`
with basic auth): the shipped versions are imported once, the host's own promotions and
versions survive a second import, and nobody without a password gets in."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator

import helpers
import pytest
import requests
from helpers import ROOT

from lifecycle import model_versions as reg
from lifecycle.shipped import import_shipped

pytestmark = pytest.mark.slow
LOGS = ROOT / "test-output" / "logs"


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory) -> Iterator[dict]:
    """A real registry server on loopback; yields {"url", "user", "password", "dir"}."""
    work = tmp_path_factory.mktemp("host")
    password = secrets.token_urlsafe(16)
    port = helpers.free_port()
    env = helpers.server_env(RADIO_REGISTRY_DIR=str(work / "registry"),
                             RADIO_REGISTRY_PORT=str(port), MLFLOW_AUTH_ADMIN_PASSWORD=password)
    proc = helpers.start(["bash", "mlflow/tracking_server.sh"], env, LOGS / "registry.log")
    url = f"http://127.0.0.1:{port}"
    try:
        helpers.wait_until(f"{url}/health", proc, 180, lambda r: r.ok)
        yield {"url": url, "user": "admin", "password": password, "dir": work / "registry",
               "proc": proc}
    finally:
        helpers.stop(proc)


@pytest.fixture
def as_admin(tracking_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", tracking_server["user"])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", tracking_server["password"])
    return tracking_server


def test_the_registry_refuses_anonymous_and_wrong_passwords(tracking_server):
    url = f"{tracking_server['url']}/api/2.0/mlflow/registered-models/search"
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(url, auth=("admin", "wrong"), timeout=30).status_code == 401
    ok = requests.get(url, auth=("admin", tracking_server["password"]), timeout=30)
    assert ok.status_code == 200


def test_import_is_idempotent_and_never_overwrites_the_host(as_admin, tmp_path, monkeypatch):
    shipped = tmp_path / "mlflow"
    shutil.copytree(ROOT / "mlflow", shipped, ignore=shutil.ignore_patterns("*.sh"))
    url = as_admin["url"]
    shipped_reg = reg.client(f"sqlite:///{shipped / 'mlflow.db'}")
    shipped_versions = shipped_reg.search_model_versions("name='radio-cxr'")
    versions = sorted((str(m.version) for m in shipped_versions), key=int)
    first = import_shipped(shipped, url)
    assert sorted(first["imported"], key=int) == versions and first["skipped"] == []
    host = reg.client(url)
    assert first["production"] == reg.alias_version(host, "radio-cxr", "production")
    prod = host.get_model_version("radio-cxr", first["production"])
    assert prod.tags["shipped_version"] == reg.alias_version(shipped_reg, "radio-cxr",
                                                              "production")
    assert prod.tags["git_commit"] == shipped_reg.get_model_version(
        "radio-cxr", prod.tags["shipped_version"]).tags["git_commit"]
    # the training run's figures come along: the model-drift job's card for a version
    # without a model_card tag (the shipped production's) on a fresh host
    import json
    from pathlib import Path

    from monitoring.model_drift import card_from_summary

    summary = json.loads(Path(host.download_artifacts(prod.run_id, "summary.json",
                                                      str(tmp_path))).read_text())
    assert set(card_from_summary(summary)) == {"accuracy", "covid_recall",
                                               "normals_called_covid"}
    # the host trains a version of its own and promotes it
    own = str(host.create_model_version("radio-cxr", prod.source, run_id=prod.run_id).version)
    host.set_registered_model_alias("radio-cxr", "production", own)
    host.set_model_version_tag("radio-cxr", own, "deploy_tag", "deployed")
    # ... and the next release ships a new version and moves its own production alias
    shipped_reg.create_model_version("radio-cxr", str(tmp_path / "m4"), tags={"x": "y"})
    new_v = str(max(int(m.version) for m in shipped_reg.search_model_versions(
        "name='radio-cxr'")))
    (tmp_path / "m4").mkdir()
    shutil.copytree(next((ROOT / "mlflow" / "artifacts").rglob("MLmodel")).parent,
                    tmp_path / "m4", dirs_exist_ok=True)
    shipped_reg.set_registered_model_alias("radio-cxr", "production", new_v)
    second = import_shipped(shipped, url)
    assert list(second["imported"]) == [new_v] and sorted(second["skipped"], key=int) == versions
    assert second["production"] is None  # the host's alias is the host's
    assert reg.alias_version(host, "radio-cxr", "production") == own
    assert host.get_model_version("radio-cxr", own).tags["deploy_tag"] == "deployed"
    third = import_shipped(shipped, url)
    assert third["imported"] == {}
    assert len(host.search_model_versions("name='radio-cxr'")) == len(versions) + 2


def test_a_version_on_the_server_is_served_from_its_artefact_store(as_admin, tmp_path,
                                                                    monkeypatch):
    """serving.served_model.model_path downloads a remote version once, complete."""
    import mlflow

    from serving.served_model import model_path

    shipped = tmp_path / "mlflow"
    shutil.copytree(ROOT / "mlflow", shipped, ignore=shutil.ignore_patterns("*.sh"))
    result = import_shipped(shipped, as_admin["url"])
    version = result["production"] or reg.alias_version(reg.client(as_admin["url"]),
                                                        "radio-cxr", "production")
    monkeypatch.setenv("RADIO_MODEL_CACHE", str(tmp_path / "cache"))
    mlflow.set_tracking_uri(as_admin["url"])
    mlflow.set_registry_uri(as_admin["url"])
    folder = model_path("radio-cxr", version)
    assert folder == (tmp_path / "cache" / "radio-cxr" / version).resolve()
    assert (folder / "MLmodel").is_file() and (folder / "artifacts").is_dir()
    assert model_path("radio-cxr", version) == folder  # cached, not downloaded again


def test_a_data_scientist_can_train_into_the_host_registry(as_admin, tmp_path, monkeypatch):
    """`python -m training train --registry http://...`: the run, its figures and the new
    version (no alias) land on the host, artefacts in the host's store."""
    from datasets_helpers import reference

    from training.fit import HParams
    from training.pipeline import TrainConfig, run

    ref = reference(tmp_path / "ref")
    url = as_admin["url"]
    host = reg.client(url)
    before = reg.alias_version(host, "radio-cxr", "production")
    summary = run(TrainConfig(sources=[ref / "alpha", ref / "beta"], registry=url,
                              grid=[HParams(epochs=1, batch_size=16, patience=1)], folds=2,
                              seed=2, promote=False))
    version = summary["model"]["version"]
    mv = host.get_model_version("radio-cxr", version)
    assert mv.tags["mode"] == "scratch" and mv.tags["git_commit"] not in ("", "unknown")
    assert "val_union_seen_accuracy" in host.get_run(mv.run_id).data.metrics
    assert reg.alias_version(host, "radio-cxr", "production") == before
    # the model is in the host's artefact store: served from there like any version
    import mlflow

    from serving.served_model import model_path

    assert not (tmp_path / "cache").exists()
    monkeypatch.setenv("RADIO_MODEL_CACHE", str(tmp_path / "cache"))
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    folder = model_path("radio-cxr", version)
    assert (folder / "artifacts" / "model.onnx").is_file() or any(folder.rglob("*.onnx"))
    model_id = mv.source.removeprefix("models:/")
    stored = [p.parent for p in (as_admin["dir"] / "artifacts").rglob("MLmodel")]
    assert any(model_id in str(p) for p in stored), (mv.source, stored)
