"""One training run end to end: data -> CV -> ensemble -> calibration -> OOD -> val report
-> MLflow run and registered model."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from serving.decision import softmax
from serving.preprocessing import IMAGE_SIZE
from training import baseline, data, ood, plots, sampling
from training.calibration import ece, fit_temperature
from training.crossval import CVResult, cross_validate
from training.evaluation import clinical_report, served_predictions
from training.fit import HParams
from training.metrics import choose_covid_threshold, report_by_source
from training.registry import MODEL_NAME, open_registry
from training.summary import format_summary


@dataclass
class TrainConfig:
    """Everything a run depends on (logged as parameters)."""

    sources: list[Path]
    registry: Path
    grid: list[HParams] = field(default_factory=lambda: [HParams()])
    folds: int = 5
    seed: int = 42
    balance: str = "weights"  # or "downsample" (the reference design)
    limit: int | None = None  # at most this many images per source/class/split (smoke runs)
    model_name: str = MODEL_NAME
    promote: bool = True
    review_threshold: float = 0.6
    size: int = IMAGE_SIZE


def _limit(ds: data.Dataset, n: int | None) -> data.Dataset:
    if n is None:
        return ds
    seen: dict[tuple[str, str], int] = {}
    keep = []
    for i, s in enumerate(ds.samples):
        k = (s.source, s.label)
        seen[k] = seen.get(k, 0) + 1
        if seen[k] <= n:
            keep.append(i)
    return ds.subset(np.array(keep))


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


def load_served(model_dir: Path):
    """The pyfunc exactly as the model server builds it, from a folder of artefacts."""
    from serving.pyfunc import RadioModel

    model = RadioModel()
    model.load_context(
        SimpleNamespace(artifacts={k: str(model_dir / f) for k, f in ARTIFACT_FILES.items()})
    )
    return model


ARTIFACT_FILES = {
    "onnx": "model.onnx",
    "ood": "ood.npz",
    "meta": "meta.json",
    "keras": "ensemble.keras",
}


def run(cfg: TrainConfig) -> dict:
    """Train, evaluate, log and register; returns the summary dict."""
    import mlflow

    from training import export
    from training.model import build_ensemble

    t0 = time.time()
    train = _limit(data.load(cfg.sources, "train", size=cfg.size), cfg.limit)
    val = _limit(data.load(cfg.sources, "val", classes=train.classes, size=cfg.size), cfg.limit)
    classes = train.classes
    version = data.dataset_version([train, val])
    if cfg.balance == "downsample":
        train = train.subset(sampling.downsample(train, cfg.seed))
        weights = np.ones(len(train.samples), np.float32)
    else:
        weights = sampling.balanced_weights(train)
    folds = sampling.patient_folds(train, cfg.folds, cfg.seed)
    fold_of = np.zeros(len(train.samples), int)
    for f, (_, te) in enumerate(folds):
        fold_of[te] = f

    with (
        open_registry(cfg.registry),
        mlflow.start_run() as active,
        tempfile.TemporaryDirectory() as tmp,
    ):
        out = Path(tmp)
        mlflow.set_tags({"dataset_version": version, "git_commit": git_commit()})
        mlflow.log_params(
            {
                "sources": ",".join(str(Path(s).name) for s in cfg.sources),
                "classes": ",".join(classes),
                "folds": cfg.folds,
                "seed": cfg.seed,
                "balance": cfg.balance,
                "image_size": cfg.size,
                "n_train": len(train.samples),
                "n_val": len(val.samples),
                "dataset_version": version,
                "grid": json.dumps([asdict(h) for h in cfg.grid]),
            }
        )
        mlflow.log_dict(data.describe(train), "data/train_counts.json")
        mlflow.log_dict({str(p): r for p, r in train.skipped + val.skipped}, "data/skipped.json")
        mlflow.log_artifact(
            str(sampling.write_metadata(out / "train_metadata.csv", train, weights, fold_of)),
            "data",
        )

        results: list[CVResult] = []
        for g, hp in enumerate(cfg.grid):

            def on_epoch(fold, epoch, logs, g=g):
                mlflow.log_metrics(
                    {f"g{g}_fold{fold}_{k}": float(v) for k, v in logs.items()}, step=epoch
                )

            res = cross_validate(train, weights, folds, hp, cfg.seed, cfg.size, on_epoch)
            mlflow.log_metrics(
                {
                    f"g{g}_cv_accuracy_mean": float(np.mean(res.fold_accuracy)),
                    f"g{g}_cv_accuracy_std": float(np.std(res.fold_accuracy)),
                    f"g{g}_cv_loss_mean": res.score,
                    f"g{g}_cv_loss_std": float(np.std(res.fold_loss)),
                }
            )
            results.append(res)
        best = min(results, key=lambda r: r.score)
        mlflow.log_params({f"hp_{k}": v for k, v in asdict(best.hp).items()})
        mlflow.log_metrics(
            {
                "cv_accuracy_mean": float(np.mean(best.fold_accuracy)),
                "cv_accuracy_std": float(np.std(best.fold_accuracy)),
                "cv_loss_mean": best.score,
                "cv_loss_std": float(np.std(best.fold_loss)),
                "epochs_mean": float(np.mean([len(h["loss"]) for h in best.histories.values()])),
            }
        )
        mlflow.log_artifact(str(plots.curves(best.histories, out / "training_curves.png")), "plots")

        # Calibration and decision threshold from out-of-fold predictions: never from val.
        y = train.y
        temperature = fit_temperature(best.oof_logits, y)
        oof_probs = softmax(best.oof_logits, temperature)
        threshold = choose_covid_threshold(oof_probs, y, classes) if "COVID" in classes else None

        model_dir = out / "model"
        model_dir.mkdir()
        ensemble = build_ensemble(best.members, cfg.size)
        ensemble.save(model_dir / ARTIFACT_FILES["keras"])
        export.to_onnx(ensemble, model_dir / ARTIFACT_FILES["onnx"], cfg.size)
        onnx_diff = export.max_difference(ensemble, model_dir / ARTIFACT_FILES["onnx"], val.images)
        train_out = export.onnx_outputs(model_dir / ARTIFACT_FILES["onnx"], train.images)
        ood.fit(train_out["features"], train.images, folds).save(model_dir / ARTIFACT_FILES["ood"])
        meta = {
            "name": cfg.model_name,
            "classes": classes,
            "image_size": cfg.size,
            "temperature": temperature,
            "covid_threshold": threshold,
            "review_threshold": cfg.review_threshold,
            "dataset_version": version,
            "members": len(best.members),
        }
        (model_dir / ARTIFACT_FILES["meta"]).write_text(json.dumps(meta, indent=2))

        # The val splits, used once: through the served code path itself, gate included.
        served = load_served(model_dir)
        val_preds = served_predictions(served, val.images)
        val_report = clinical_report(val_preds, val.y, val.sources, classes)
        val_out = served.run(val.images)
        val_probs = softmax(val_out["logits"], temperature)
        rejected = [p for p in val_preds if p["status"] == "not_xray"]
        calib = {
            "ece_oof_before": ece(softmax(best.oof_logits), y),
            "ece_oof_after": ece(oof_probs, y),
            "ece_val_before": ece(softmax(val_out["logits"]), val.y),
            "ece_val_after": ece(val_probs, val.y),
        }

        c = baseline.choose_c(train.images, y, weights, folds, len(classes))
        base_model = baseline.fit(train.images, y, weights, c)
        base_probs = baseline.predict_proba(base_model, val.images, len(classes))
        base_report = report_by_source(base_probs, val.y, val.sources, classes, None)

        flat = {f"val_{src}_{k}": v for src, r in val_report.items() for k, v in r.items()}
        flat |= {
            f"baseline_val_{src}_{k}": v for src, r in base_report.items() for k, v in r.items()
        }
        flat |= calib | {
            k: v
            for k, v in {"temperature": temperature, "covid_threshold": threshold}.items()
            if v is not None
        }
        flat |= {f"onnx_max_diff_{k}": v for k, v in onnx_diff.items()}
        flat |= {"val_ood_false_rejections": float(len(rejected)), "baseline_C": c}
        mlflow.log_metrics(flat)
        pred = np.array([classes.index(p["label"]) if p["label"] else -1 for p in val_preds])
        figures = [
            plots.confusion(val.y, pred, classes, out / "confusion_val.png", "val (union)"),
            plots.roc(val.y, val_probs, classes, out / "roc_val.png", "val (union)"),
            plots.reliability_diagram(
                y,
                {"before": softmax(best.oof_logits), "after": oof_probs},
                out / "reliability.png",
                f"out-of-fold, T={temperature:.2f}",
            ),
            plots.reliability_diagram(
                val.y,
                {"before": softmax(val_out["logits"]), "after": val_probs},
                out / "reliability_val.png",
                "val (union)",
            ),
        ]
        for fig in figures:
            mlflow.log_artifact(str(fig), "plots")

        summary = {
            "run_id": active.info.run_id,
            "dataset_version": version,
            "classes": classes,
            "hparams": asdict(best.hp),
            "temperature": temperature,
            "covid_threshold": threshold,
            "val": val_report,
            "baseline": base_report,
            "calibration": calib,
            "onnx_max_diff": onnx_diff,
            "val_ood_false_rejections": len(rejected),
            "cv_accuracy": [float(np.mean(best.fold_accuracy)), float(np.std(best.fold_accuracy))],
            "seconds": time.time() - t0,
        }
        mlflow.log_dict(summary, "summary.json")
        from training.logging_model import log_and_register

        summary["model"] = log_and_register(
            model_dir, ARTIFACT_FILES, cfg.model_name, version, cfg.promote
        )
        print(format_summary(summary), flush=True)
    return summary
