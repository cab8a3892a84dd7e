"""lifecycle/prune.py: which versions go, what stays of them, and the shipped registry's size."""

from __future__ import annotations

import json
from contextlib import chdir
from pathlib import Path

import pytest
from helpers import ROOT
from lifecycle_helpers import settings_for
from mlflow.exceptions import MlflowException

from lifecycle import cli, events, prune
from lifecycle import model_versions as reg

NAME = "radio-cxr"


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """Versions 1-5 of radio-cxr, each a logged model with a weights file and a run with a
    metric, stored like the shipped registry (artefact paths relative to its parent);
    production 4, previous 2."""
    s = settings_for(tmp_path / "mlflow", tmp_path)
    (tmp_path / "mlflow").mkdir()
    # the environment the CLI reads; MLflow also resolves models:/ sources through it
    monkeypatch.setenv("MLFLOW_TRACKING_URI", s.tracking_uri)
    monkeypatch.setenv("RADIO_REGISTRY_ROOT", str(s.registry_root))
    monkeypatch.setenv("RADIO_LIFECYCLE_LOG", str(s.events_log))
    cl = reg.client(s.tracking_uri)
    with chdir(tmp_path):
        exp = cl.create_experiment(NAME, artifact_location="mlflow/artifacts")
        cl.create_registered_model(NAME)
        for v in range(1, 6):
            run = cl.create_run(exp)
            cl.log_metric(run.info.run_id, "val_union_accuracy", v / 10)
            model = cl.create_logged_model(exp, source_run_id=run.info.run_id)
            files = tmp_path / f"weights{v}"
            files.mkdir()
            (files / "model.onnx").write_bytes(bytes([v]) * 1000)
            cl.log_model_artifacts(model.model_id, str(files))
            cl.create_model_version(NAME, f"models:/{model.model_id}", run_id=run.info.run_id,
                                    model_id=model.model_id,
                                    tags={"parent_version": str(v - 1), "git_commit": f"c{v}"})
    cl.set_registered_model_alias(NAME, reg.PRODUCTION, "4")
    cl.set_registered_model_alias(NAME, reg.PREVIOUS, "2")
    return s


def _weights(s, version: str) -> Path:
    cl = reg.client(s.tracking_uri)
    model_id = prune.logged_model_id(cl.get_model_version(NAME, version))
    return s.registry_root / cl.get_logged_model(model_id).artifact_location / "model.onnx"


def test_aliased_and_newest_versions_are_kept(registry):
    cl = reg.client(registry.tracking_uri)
    assert prune.plan(cl, NAME, keep_latest=1) == (["5", "4", "2"], ["3", "1"])
    assert prune.plan(cl, NAME, keep_latest=0) == (["4", "2"], ["5", "3", "1"])
    assert prune.plan(cl, NAME, keep_latest=9) == (["5", "4", "3", "2", "1"], [])
    with pytest.raises(ValueError, match="0 or more"):
        prune.plan(cl, NAME, keep_latest=-1)


def test_dry_run_changes_nothing(registry, capsys):
    assert cli.main(["prune", "--keep-latest", "1", "--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == "kept 5, 4, 2; would prune 3, 1"
    cl = reg.client(registry.tracking_uri)
    assert len(cl.search_model_versions(f"name='{NAME}'")) == 5
    assert all(_weights(registry, v).exists() for v in "12345")
    assert not registry.events_log.exists()


def test_pruned_versions_lose_their_files_but_not_their_history(registry, capsys):
    cl = reg.client(registry.tracking_uri)
    doomed = {v: (_weights(registry, v), cl.get_model_version(NAME, v)) for v in ("3", "1")}
    kept = {v: _weights(registry, v).read_bytes() for v in ("5", "4", "2")}

    assert cli.main(["prune", "--keep-latest", "1"]) == 0
    assert capsys.readouterr().out.strip() == "kept 5, 4, 2; pruned 3, 1"

    left = {str(mv.version) for mv in cl.search_model_versions(f"name='{NAME}'")}
    assert left == {"5", "4", "2"}
    assert {v: _weights(registry, v).read_bytes() for v in kept} == kept
    assert reg.alias_version(cl, NAME, reg.PRODUCTION) == "4"
    assert reg.alias_version(cl, NAME, reg.PREVIOUS) == "2"
    for v, (weights, mv) in doomed.items():
        assert not weights.exists() and not weights.parent.parent.exists()
        model_id = prune.logged_model_id(mv)
        with pytest.raises(MlflowException, match="not found"):
            cl.get_logged_model(model_id)
        run = cl.get_run(mv.run_id)
        assert run.data.tags["pruned_version"] == f"{NAME}/{v}"
        assert json.loads(run.data.tags["pruned_version_tags"]) == dict(mv.tags)
        assert run.data.metrics["val_union_accuracy"] == int(v) / 10
    (event,) = events.read(registry.events_log)
    assert event["action"] == "pruned" and event["pruned"] == ["3", "1"]
    # nothing left to prune under the same policy
    assert cli.main(["prune", "--keep-latest", "1"]) == 0
    assert capsys.readouterr().out.strip() == "kept 5, 4, 2; pruned nothing"


def test_a_negative_count_is_refused(registry, capsys):
    assert cli.main(["prune", "--keep-latest", "-1"]) == 2
    assert "0 or more" in capsys.readouterr().err


def test_the_shipped_registry_stays_under_50_mb():
    """The model issue's bound on what ships in git (mlflow/): prune before committing a
    new version (docs/model.md, "The registry that ships")."""
    size = sum(p.stat().st_size for p in (ROOT / "mlflow").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts)
    # the budget: version 10 (a 13 MB pretrained network, its Keras copy and the
    # familiarity reference) beside version 6 for roll-back
    assert size < 50e6, f"mlflow/ holds {size / 1e6:.1f} MB"


def test_files_shared_with_a_kept_version_stay(registry):
    cl = reg.client(registry.tracking_uri)
    shared = cl.get_model_version(NAME, "3")
    with chdir(registry.registry_root):  # a re-registration of version 3's logged model
        again = cl.create_model_version(NAME, shared.source, run_id=shared.run_id).version
    weights = _weights(registry, "3")
    prune.prune(cl, NAME, registry.registry_root, keep_latest=1)
    assert {str(mv.version) for mv in cl.search_model_versions(f"name='{NAME}'")} == {
        str(again), "4", "2"}
    assert weights.exists() and _weights(registry, str(again)) == weights


def test_a_pruned_version_is_still_known_by_its_run(registry):
    cl = reg.client(registry.tracking_uri)
    before = cl.get_model_version(NAME, "3")
    assert prune.version_record(cl, NAME, "3") == prune.VersionRecord(
        "3", before.run_id, dict(before.tags), pruned=False)
    prune.prune(cl, NAME, registry.registry_root, keep_latest=1)
    assert prune.version_record(cl, NAME, "3") == prune.VersionRecord(
        "3", before.run_id, dict(before.tags), pruned=True)
    assert prune.version_record(cl, NAME, "42") is None


def test_long_tags_are_cut_but_stay_json():
    tags = {"parent_version": "3", "gate_reasons": "x" * 7000, "note": "y" * 3000}
    cut = json.loads(prune._tags_json(tags))
    assert cut == {"parent_version": "3", "gate_reasons": "x" * 1000, "note": "y" * 1000}
    assert prune._tags_json({"a": "b"}) == '{"a": "b"}'


def test_two_pruned_versions_on_one_logged_model(registry):
    cl = reg.client(registry.tracking_uri)
    first = cl.get_model_version(NAME, "1")
    with chdir(registry.registry_root):
        again = cl.create_model_version(NAME, first.source, run_id=first.run_id).version
    weights = _weights(registry, "1")
    result = prune.prune(cl, NAME, registry.registry_root, keep_latest=0)
    assert result["pruned"] == [str(again), "5", "3", "1"]
    assert not weights.exists() and _weights(registry, "4").exists()
