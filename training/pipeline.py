"""One training run end to end, as a sequence of named stages:

1. data (:mod:`training.prepare`): load, limit, balance, folds, dataset version;
2. cross-validation (:func:`training.crossval.grid_search`): grid search, best setting;
3. packaging (:mod:`training.packaging`): temperature and COVID threshold from the
   out-of-fold logits, ensemble, ONNX export and check, OOD fit, ``meta.json``;
4. evaluation (:mod:`training.validation`): the val splits through the served path,
   calibration, the pixel baseline, figures;
5. tracking (:mod:`training.tracking`): the MLflow run and the registered model.

Each stage is a function of plain data, tested on its own on tiny synthetic sets.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from training import tracking
from training.chest_gate import load_negatives
from training.crossval import CVResult, grid_search
from training.data import Dataset
from training.packaging import ARTIFACT_FILES, Packaged, load_served, package
from training.prepare import RunData, prepare
from training.registry_folder import open_registry
from training.summary import format_summary
from training.tracking import git_commit
from training.train_config import TrainConfig
from training.validation import Evaluation, evaluate

# Re-exported: training.repackage packages and tags its versions the same way.
__all__ = ["ARTIFACT_FILES", "TrainConfig", "git_commit", "load_served", "run"]


def lung_crops_of(images: np.ndarray, lungs: Path) -> np.ndarray:
    """uint8 images cut to their lung boxes by the segmenter at ``lungs`` (ONNX)."""
    from serving.lungs import LungSegmenter

    return LungSegmenter(str(lungs), threads=2).crop(images)[0]


def lung_crops(ds: Dataset, lungs: Path | None) -> Dataset:
    """``ds`` with its images cut to the lung boxes; ``ds`` itself without a segmenter."""
    if lungs is None:
        return ds
    return Dataset(ds.samples, lung_crops_of(ds.images, lungs), ds.classes, ds.skipped)


def summarize(
    run_id: str, d: RunData, best: CVResult, pkg: Packaged, ev: Evaluation, seconds: float
) -> dict:
    """The run's result: what is printed, logged as ``summary.json`` and returned."""
    return {
        "run_id": run_id,
        "dataset_version": d.version,
        "classes": d.classes,
        "hparams": asdict(best.hp),
        "temperature": pkg.temperature,
        "covid_threshold": pkg.threshold,
        "val": ev.val,
        "baseline": ev.baseline,
        "calibration": ev.calibration,
        "onnx_max_diff": pkg.onnx_diff,
        "val_ood_false_rejections": ev.refused,
        "cv_accuracy": [float(np.mean(best.fold_accuracy)), float(np.std(best.fold_accuracy))],
        "seconds": seconds,
    }


def run(cfg: TrainConfig) -> dict:
    """Train, evaluate, log and register; returns the summary dict."""
    import mlflow

    t0 = time.time()
    report = cfg.progress or (lambda _: None)
    report({"stage": "data"})
    d = prepare(cfg.sources, cfg.size, cfg.limit, cfg.balance, cfg.folds, cfg.seed, cfg.classes)
    # What the network is fitted on; the val images stay whole: the served model crops them.
    fit_on = lung_crops(d.train, cfg.lungs)
    negatives = load_negatives(cfg.negatives, "train", cfg.size) if cfg.negatives else None
    if negatives is not None and cfg.lungs is not None:
        negatives = replace(negatives, images=lung_crops_of(negatives.images, cfg.lungs))
    epochs_of = {g: hp.epochs for g, hp in enumerate(cfg.grid)}

    def on_epoch(setting: int, fold: int, epoch: int, logs: dict) -> None:
        tracking.log_epoch(setting, fold, epoch, logs)
        report({"stage": "cross-validation", "setting": setting + 1, "settings": len(cfg.grid),
                "fold": fold + 1, "folds": cfg.folds, "epoch": epoch + 1,
                "epochs": epochs_of[setting],
                "logs": {k: round(float(v), 4) for k, v in logs.items()}})

    with (
        open_registry(cfg.registry),
        mlflow.start_run() as active,
        tempfile.TemporaryDirectory() as tmp,
    ):
        out = Path(tmp)
        tracking.log_inputs(cfg, d, out)
        graph, lineage = None, dict(cfg.lineage)
        if cfg.backbone == "lite0-frozen":
            from training import frozen, pretrained

            report({"stage": "cross-validation", "setting": 1, "settings": 1})
            best, graph, head_cv = frozen.train(fit_on, d.weights, d.folds, cfg.size,
                                                cfg.feature_cache)
            frozen.log_head(head_cv)
            # Origin, licence and checksum of the weights, with the registered version.
            lineage |= pretrained.provenance()
            tracking.mlflow_tags(pretrained.provenance())
        else:
            best, _ = grid_search(
                fit_on,
                d.weights,
                d.folds,
                cfg.grid,
                cfg.seed,
                cfg.size,
                on_epoch=on_epoch,
                on_setting=tracking.log_setting,
                init_members=cfg.init_members,
            )
            tracking.log_best(best, out)
        report({"stage": "packaging"})
        pkg = package(
            best.members,
            best.oof_logits,
            d.train.y,
            d.classes,
            fit_on.images,
            d.val.images,
            d.folds,
            out / "model",
            name=cfg.model_name,
            size=cfg.size,
            review_threshold=cfg.review_threshold,
            dataset_version=d.version,
            negatives=negatives,
            train_groups=d.train.groups,
            lungs=cfg.lungs,
            ensemble=graph,
            backbone=cfg.backbone,
        )
        report({"stage": "evaluation"})
        ev = evaluate(load_served(pkg.model_dir), d, best.oof_logits, pkg.temperature, out)
        tracking.log_evaluation(pkg, ev)
        summary = summarize(active.info.run_id, d, best, pkg, ev, time.time() - t0)
        tracking.log_summary(summary)
        report({"stage": "registering"})
        summary["model"] = tracking.register(pkg, cfg.model_name, cfg.promote, lineage)
        print(format_summary(summary), flush=True)
    return summary
