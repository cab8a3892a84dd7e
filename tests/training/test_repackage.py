"""training/repackage.py: same weights, new serving code, promoted only if identical."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from helpers import ROOT

from training import repackage


@pytest.fixture
def registry(tmp_path):
    """A scratch copy of the shipped registry (the real one is never written by tests)."""
    shutil.copytree(ROOT / "mlflow", tmp_path / "mlflow", ignore=shutil.ignore_patterns("*.sh"))
    return tmp_path / "mlflow"


def images(n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(0)
    ramp = np.tile(np.linspace(30, 220, 224)[:, None], (1, 224))
    return np.clip(ramp + rng.normal(0, 20, (n, 224, 224)), 0, 255).astype(np.uint8)


def _version_info(registry, name, alias):
    from mlflow import MlflowClient

    repackage.use_registry(registry)
    client = MlflowClient()
    return client, client.get_model_version_by_alias(name, alias)


@pytest.mark.slow
def test_identical_answers_move_the_alias_with_lineage(registry):
    _, before = _version_info(registry, "radio-cxr", "production")
    old = str(before.version)
    result = repackage.repackage(registry, images(), version=old)
    assert result["differences"] == [] and result["alias"] == "production"
    client, prod = _version_info(registry, "radio-cxr", "production")
    assert str(prod.version) == result["version"] != old
    assert prod.tags["parent_version"] == old and prod.tags["equivalence"] == "passed"
    assert prod.tags["git_commit"] not in ("", "unknown")
    # the new version carries the serving package, not a copy of training
    code = repackage._artifact_dir(registry, "radio-cxr", result["version"]).parent / "code"
    assert (code / "serving" / "pyfunc.py").is_file() and not (code / "training").exists()


@pytest.mark.slow
def test_different_answers_leave_the_alias_where_it_was(registry, monkeypatch):
    _, before = _version_info(registry, "radio-cxr", "production")
    old = str(before.version)
    real = repackage.answers_of

    def tampered(reg, name, version, x):
        out = real(reg, name, version, x)
        if version != old:
            out[0] = {**out[0], "label": "Normal" if out[0]["label"] != "Normal" else "COVID"}
        return out

    monkeypatch.setattr(repackage, "answers_of", tampered)
    result = repackage.repackage(registry, images(3), version=old)
    assert result["alias"] == "" and result["differences"] == ["image 0: label"]
    client, after = _version_info(registry, "radio-cxr", "production")
    assert after.version == before.version
    assert client.get_model_version("radio-cxr", result["version"]).tags["equivalence"] == "failed"


def test_differences_ignore_only_the_model_identity():
    a = [{"label": "COVID", "probabilities": {"COVID": 0.9}, "model": {"version": "1"}}]
    b = [{"label": "COVID", "probabilities": {"COVID": 0.9}, "model": {"version": "2"}}]
    assert repackage.differences(a, b) == []
    c = [{"label": "COVID", "probabilities": {"COVID": 0.8}, "model": {"version": "2"}}]
    assert repackage.differences(a, c) == ["image 0: probabilities"]
    assert repackage.differences(a, a + a) == ["1 answers against 2"]
