"""lifecycle/retrain.py: the three modes on small synthetic data, with lineage and progress.

Real (tiny) trainings into a scratch registry: from scratch on a reference version, then
fine-tuning the production model on a production version (parent = that model), then from
scratch on reference + production (production images kept as their own source)."""

from __future__ import annotations

import pytest
from datasets_helpers import production_version, reference
from lifecycle_helpers import settings_for

from lifecycle import events, operations, retrain
from lifecycle import model_versions as reg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("retrain")
    ref = reference(work / "reference")
    prod = production_version(work / "production" / "v1", n=48)
    s = settings_for(work / "mlflow", work)
    reports: list[dict] = []
    real_call = retrain.ProgressFile.__call__

    def recording(self, report):
        reports.append(report)
        real_call(self, report)

    retrain.ProgressFile.__call__ = recording
    import helpers
    import smtp_helpers

    controller, box, env = smtp_helpers.start(work, helpers.free_port())
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    # Version 1's CNN (one epoch): these tests are about modes, lineage and progress; the
    # frozen-backbone recipe's own run is tested in tests/training/test_pipeline.py.
    mp.setenv("RADIO_TRAIN_BACKBONE", "scratch")
    try:
        common = {"registry": work / "mlflow", "epochs": 1, "folds": 2, "seed": 1}
        scratch = retrain.retrain(s, "scratch", "ds", reference=ref,
                                  progress=work / "progress.json", **common)
        operations.force(s, scratch["version"], by="ds", reason="first model of this registry")
        tune = retrain.retrain(s, "finetune", "ds", production=prod, **common)
        both = retrain.retrain(s, "scratch-plus-production", "ds", reference=ref,
                               production=prod, **common)
    finally:
        retrain.ProgressFile.__call__ = real_call
        mp.undo()
        controller.stop()
    return s, work, scratch, tune, both, reports, box


def _tags(s, version):
    return reg.client(s.tracking_uri).get_model_version(s.model_name, version).tags


def test_from_scratch_on_a_reference_version(trained):
    s, work, scratch, _, _, reports, _ = trained
    tags = _tags(s, scratch["version"])
    assert tags["mode"] == "scratch" and tags["parent_version"] == "none"
    assert tags["dataset_version"] == scratch["dataset_version"]
    assert len(tags["dataset_manifest_hash"]) == 64
    assert tags["git_commit"] not in ("", "unknown")
    # progress: every fold and epoch reported, then the figures
    cv = [r for r in reports if r["stage"] == "cross-validation"]
    assert {(r["fold"], r["epoch"]) for r in cv} >= {(1, 1), (2, 1)}
    assert all(r["folds"] == 2 and r["epochs"] == 1 and "loss" in r["logs"] for r in cv)
    assert reports[-1]["stage"] == "done"
    assert "union" in reports[-1]["val"] and "alpha" in reports[-1]["val"]


def test_finetune_starts_from_production_on_production_data(trained):
    s, _, scratch, tune, _, _, _ = trained
    tags = _tags(s, tune["version"])
    assert tags["mode"] == "finetune" and tags["parent_version"] == scratch["version"]
    assert set(tune["val"]) == {"union", "production-st-elsewhere"}
    # the parent's outputs are kept even where production data lacks a class
    from training.registry_folder import load_model

    model = load_model(s.registry_root / "mlflow", s.model_name, version=tune["version"])
    assert model.classes == ["COVID", "Normal", "Viral Pneumonia"]
    # registered, not promoted: production moves only through the gate
    assert reg.alias_version(reg.client(s.tracking_uri), s.model_name,
                             "production") == scratch["version"]


def test_scratch_plus_production_keeps_production_as_its_own_source(trained):
    s, _, _, tune, both, _, box = trained
    tags = _tags(s, both["version"])
    assert tags["mode"] == "scratch-plus-production" and tags["parent_version"] == "none"
    assert {"alpha", "beta", "production-st-elsewhere"} <= set(both["val"])
    assert tags["dataset_manifest_hash"] != _tags(s, tune["version"])["dataset_manifest_hash"]
    actions = [e["action"] for e in events.read(s.events_log)]
    assert actions.count("trained") == 3
    # a finished training is e-mailed with its figures and what to do next
    subjects = [m["subject"] for m in box.messages if "training finished" in m["subject"]]
    assert len(subjects) == 3 and f"version {both['version']} (scratch-plus-production)" in \
        subjects[-1]
    assert f"python -m lifecycle deploy {both['version']}" in box.messages[-1]["body"]


def test_modes_that_need_production_data_say_so(tmp_path):
    s = settings_for(tmp_path / "mlflow", tmp_path)
    with pytest.raises(reg.LifecycleError, match="needs --production"):
        retrain.retrain(s, "finetune", "ds")
    with pytest.raises(reg.LifecycleError, match="unknown mode"):
        retrain.retrain(s, "transfer", "ds")
