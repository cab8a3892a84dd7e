"""The tracking stage: what a training run writes to its MLflow run (tags, parameters,
metrics, data lists, figures, summary) and the registration of its model.

Every function logs to the active MLflow run; the other stages know nothing of MLflow.
The metric names are an interface (the model card, the slow pipeline test and anyone
comparing runs read them): :func:`evaluation_metrics` builds them in one place.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict
from pathlib import Path

import numpy as np

from training import data, plots, sampling
from training.crossval import CVResult
from training.packaging import Packaged, artifact_files
from training.prepare import RunData
from training.train_config import TrainConfig
from training.validation import Evaluation


def git_commit() -> str:
    """Commit of the code that trained (``-dirty`` if uncommitted changes), or ``unknown``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        # The registry folder is written by the run itself (paths made absolute while it
        # logs): its changes are the run's output, not uncommitted code.
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!mlflow"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_params(cfg: TrainConfig, d: RunData) -> dict[str, object]:
    """The run's parameters: its configuration and the size of its data."""
    return {
        "sources": ",".join(getattr(s, "name", None) or Path(s).name for s in cfg.sources),
        "classes": ",".join(d.classes),
        "folds": cfg.folds,
        "seed": cfg.seed,
        "balance": cfg.balance,
        "image_size": cfg.size,
        "n_train": len(d.train.samples),
        "n_val": len(d.val.samples),
        "dataset_version": d.version,
        "grid": json.dumps([asdict(h) for h in cfg.grid]),
    }


def log_inputs(cfg: TrainConfig, d: RunData, out: Path) -> None:
    """Tags, parameters and the exact list of images (with weight and fold) of the run."""
    import mlflow

    mlflow.set_tags({"dataset_version": d.version, "git_commit": git_commit()})
    mlflow.log_params(run_params(cfg, d))
    mlflow.log_dict(data.describe(d.train), "data/train_counts.json")
    mlflow.log_dict({str(p): r for p, r in d.skipped}, "data/skipped.json")
    metadata = sampling.write_metadata(out / "train_metadata.csv", d.train, d.weights, d.fold_of)
    mlflow.log_artifact(str(metadata), "data")


def mlflow_tags(tags: dict[str, str]) -> None:
    """Tags of the active run (what the run was made from)."""
    import mlflow

    mlflow.set_tags(tags)


def log_epoch(setting: int, fold: int, epoch: int, logs: dict) -> None:
    """One epoch of one fold member of grid setting ``setting`` (live curves in MLflow)."""
    import mlflow

    mlflow.log_metrics(
        {f"g{setting}_fold{fold}_{k}": float(v) for k, v in logs.items()}, step=epoch
    )


def cv_metrics(res: CVResult, prefix: str = "") -> dict[str, float]:
    """Mean and spread of the held-out accuracy and loss over the folds."""
    return {
        f"{prefix}cv_accuracy_mean": float(np.mean(res.fold_accuracy)),
        f"{prefix}cv_accuracy_std": float(np.std(res.fold_accuracy)),
        f"{prefix}cv_loss_mean": res.score,
        f"{prefix}cv_loss_std": float(np.std(res.fold_loss)),
    }


def log_setting(setting: int, res: CVResult) -> None:
    """Cross-validation figures of one grid setting."""
    import mlflow

    mlflow.log_metrics(cv_metrics(res, f"g{setting}_"))


def log_best(best: CVResult, out: Path) -> None:
    """The chosen hyper-parameters, their CV figures and the members' training curves."""
    import mlflow

    mlflow.log_params({f"hp_{k}": v for k, v in asdict(best.hp).items()})
    epochs = float(np.mean([len(h["loss"]) for h in best.histories.values()]))
    mlflow.log_metrics(cv_metrics(best) | {"epochs_mean": epochs})
    mlflow.log_artifact(str(plots.curves(best.histories, out / "training_curves.png")), "plots")


def evaluation_metrics(pkg: Packaged, ev: Evaluation) -> dict[str, float]:
    """The flat metrics of packaging and evaluation, under their logged names."""
    flat = {f"val_{src}_{k}": v for src, r in ev.val.items() for k, v in r.items()}
    flat |= {f"baseline_val_{src}_{k}": v for src, r in ev.baseline.items() for k, v in r.items()}
    flat |= ev.calibration | {
        k: v
        for k, v in {"temperature": pkg.temperature, "covid_threshold": pkg.threshold}.items()
        if v is not None
    }
    flat |= {f"onnx_max_diff_{k}": v for k, v in pkg.onnx_diff.items()}
    flat |= {"val_ood_false_rejections": float(ev.refused), "baseline_C": ev.baseline_c}
    return flat


def log_evaluation(pkg: Packaged, ev: Evaluation) -> None:
    """Metrics of packaging and evaluation, and the evaluation's figures."""
    import mlflow

    mlflow.log_metrics(evaluation_metrics(pkg, ev))
    for fig in ev.figures:
        mlflow.log_artifact(str(fig), "plots")


def log_summary(summary: dict) -> None:
    """The run's summary (what ``format_summary`` prints) as ``summary.json``."""
    import mlflow

    mlflow.log_dict(summary, "summary.json")


def register(pkg: Packaged, name: str, promote: bool,
             lineage: dict[str, str] | None = None) -> dict[str, str]:
    """Log the served pyfunc in the active run and register it (alias if ``promote``)."""
    from training.logging_model import log_and_register

    return log_and_register(
        pkg.model_dir, artifact_files(pkg.model_dir), name, pkg.meta["dataset_version"], promote,
        lineage,
    )
