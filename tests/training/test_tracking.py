"""training/tracking.py, the tracking stage: the logged names (an interface) and what a run
writes to a scratch MLflow registry (no training: hand-made stage results)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from training import tracking
from training.crossval import CVResult
from training.fit import HParams
from training.packaging import Packaged
from training.pipeline import TrainConfig
from training.prepare import prepare
from training.validation import Evaluation

REPORT = {"accuracy": 0.9, "seen_accuracy": 0.8}


def stage_results(threshold: float | None = 0.4) -> tuple[Packaged, Evaluation]:
    meta = {"temperature": 1.3, "covid_threshold": threshold, "dataset_version": "v1"}
    pkg = Packaged(Path("model"), meta, {"logits": 1e-6, "features": 2e-6, "cam_relative": 0.0})
    ev = Evaluation(
        val={"union": REPORT, "alpha": REPORT},
        baseline={"union": {"accuracy": 0.7}},
        baseline_c=0.01,
        calibration={"ece_oof_before": 0.2, "ece_oof_after": 0.1},
        refused=2,
        figures=[],
    )
    return pkg, ev


def test_evaluation_metrics_keep_their_names():
    pkg, ev = stage_results()
    assert tracking.evaluation_metrics(pkg, ev) == {
        "val_union_accuracy": 0.9,
        "val_union_seen_accuracy": 0.8,
        "val_alpha_accuracy": 0.9,
        "val_alpha_seen_accuracy": 0.8,
        "baseline_val_union_accuracy": 0.7,
        "ece_oof_before": 0.2,
        "ece_oof_after": 0.1,
        "temperature": 1.3,
        "covid_threshold": 0.4,
        "onnx_max_diff_logits": 1e-6,
        "onnx_max_diff_features": 2e-6,
        "onnx_max_diff_cam_relative": 0.0,
        "val_ood_false_rejections": 2.0,
        "baseline_C": 0.01,
    }


def test_no_covid_class_means_no_threshold_metric():
    assert "covid_threshold" not in tracking.evaluation_metrics(*stage_results(None))


def test_cv_metrics_per_setting_and_for_the_best():
    res = CVResult(HParams(), fold_accuracy=[0.6, 0.8], fold_loss=[0.5, 0.7])
    got = tracking.cv_metrics(res, "g1_")
    assert got == pytest.approx(
        {
            "g1_cv_accuracy_mean": 0.7,
            "g1_cv_accuracy_std": 0.1,
            "g1_cv_loss_mean": 0.6,
            "g1_cv_loss_std": 0.1,
        }
    )
    assert set(tracking.cv_metrics(res)) == {k[3:] for k in got}


def test_git_commit_names_the_code_or_says_unknown(monkeypatch, tmp_path):
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", tracking.git_commit())
    monkeypatch.chdir(tmp_path)  # not a repository
    assert tracking.git_commit() == "unknown"


@pytest.fixture
def scratch_mlflow(tmp_path):
    """MLflow pointed at a scratch registry for one test, then back where it was."""
    import mlflow

    from training.registry_folder import open_registry

    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    uris = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        with open_registry(tmp_path / "reg"), mlflow.start_run() as run:
            yield run
    finally:
        mlflow.set_tracking_uri(uris[0])
        mlflow.set_registry_uri(uris[1])
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_a_run_logs_its_inputs_search_and_evaluation(toy_sources, tmp_path, scratch_mlflow):
    from mlflow import MlflowClient

    cfg = TrainConfig(sources=toy_sources, registry=tmp_path / "reg", folds=2, seed=3, size=32)
    d = prepare(toy_sources, 32, None, "weights", 2, 3)
    history = {"loss": [1.0, 0.9], "accuracy": [0.5, 0.6], "val_loss": [1.1, 1.0]}
    best = CVResult(
        HParams(epochs=2),
        histories={"fold0": history, "fold1": history},
        fold_accuracy=[0.5, 0.7],
        fold_loss=[0.9, 0.8],
    )
    out = tmp_path / "out"
    out.mkdir()
    pkg, ev = stage_results()

    tracking.log_inputs(cfg, d, out)
    tracking.log_epoch(0, 1, 1, {"loss": 0.5})
    tracking.log_setting(0, best)
    tracking.log_best(best, out)
    tracking.log_evaluation(pkg, ev)

    client = MlflowClient()
    run = client.get_run(scratch_mlflow.info.run_id)
    assert run.data.tags["dataset_version"] == d.version
    assert run.data.params["n_train"] == "18" and run.data.params["hp_epochs"] == "2"
    assert set(tracking.run_params(cfg, d)) <= set(run.data.params)
    metrics = run.data.metrics
    assert metrics["epochs_mean"] == 2.0 and metrics["g0_fold1_loss"] == 0.5
    assert metrics["cv_loss_mean"] == pytest.approx(0.85) == metrics["g0_cv_loss_mean"]
    assert tracking.evaluation_metrics(pkg, ev).items() <= metrics.items()
    [step] = client.get_metric_history(run.info.run_id, "g0_fold1_loss")
    assert step.step == 1  # per-epoch curves keep their epoch
    listed = {a.path for a in client.list_artifacts(run.info.run_id, "data")}
    assert listed == {"data/train_counts.json", "data/skipped.json", "data/train_metadata.csv"}
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/training_curves.png"}
