"""The evaluation stage of a training run: the val splits, used once, through the served
prediction path (the "not a chest X-ray" gate included); calibration before and after the
temperature; the pixel baseline on the same folds; the figures of the run.

The per-source reports are :func:`training.evaluation.clinical_report` of
:func:`training.evaluation.served_predictions`, as everywhere a model is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serving.decision import softmax
from training import baseline, plots
from training.calibration import ece
from training.evaluation import clinical_report, served_predictions
from training.metrics import report_by_source
from training.prepare import RunData


@dataclass
class Evaluation:
    """What the run reports about its model on val, beside the pixel baseline."""

    val: dict[str, dict[str, float]]
    baseline: dict[str, dict[str, float]]
    baseline_c: float
    calibration: dict[str, float]
    refused: int  # val X-rays the gate refused as "not a chest X-ray"
    figures: list[Path]


def calibration_errors(
    oof_logits: np.ndarray,
    y: np.ndarray,
    val_logits: np.ndarray,
    val_y: np.ndarray,
    temperature: float,
) -> dict[str, float]:
    """Expected calibration error out-of-fold and on val, before and after the temperature."""
    return {
        "ece_oof_before": ece(softmax(oof_logits), y),
        "ece_oof_after": ece(softmax(oof_logits, temperature), y),
        "ece_val_before": ece(softmax(val_logits), val_y),
        "ece_val_after": ece(softmax(val_logits, temperature), val_y),
    }


def pixel_baseline(d: RunData) -> tuple[dict[str, dict[str, float]], float]:
    """The logistic regression on pixels, regularisation chosen on the CNN's folds:
    ``(report per source on val, C)``."""
    n_classes = len(d.classes)
    c = baseline.choose_c(d.train.images, d.train.y, d.weights, d.folds, n_classes)
    model = baseline.fit(d.train.images, d.train.y, d.weights, c)
    probs = baseline.predict_proba(model, d.val.images, n_classes)
    return report_by_source(probs, d.val.y, d.val.sources, d.classes, None), c


def figures(
    d: RunData,
    val_preds: list[dict],
    oof_logits: np.ndarray,
    val_logits: np.ndarray,
    temperature: float,
    out: Path,
) -> list[Path]:
    """Confusion matrix (refusals in their own column), ROC and reliability diagrams."""
    classes, val = d.classes, d.val
    pred = np.array([classes.index(p["label"]) if p["label"] else -1 for p in val_preds])
    val_probs = softmax(val_logits, temperature)
    return [
        plots.confusion(val.y, pred, classes, out / "confusion_val.png", "val (union)"),
        plots.roc(val.y, val_probs, classes, out / "roc_val.png", "val (union)"),
        plots.reliability_diagram(
            d.train.y,
            {"before": softmax(oof_logits), "after": softmax(oof_logits, temperature)},
            out / "reliability.png",
            f"out-of-fold, T={temperature:.2f}",
        ),
        plots.reliability_diagram(
            val.y,
            {"before": softmax(val_logits), "after": val_probs},
            out / "reliability_val.png",
            "val (union)",
        ),
    ]


def evaluate(
    served, d: RunData, oof_logits: np.ndarray, temperature: float, out: Path
) -> Evaluation:
    """Evaluate ``served`` (the pyfunc as the server loads it) on ``d.val``; figures to ``out``.

    ``oof_logits`` are the chosen setting's out-of-fold logits on ``d.train``.
    """
    val_preds = served_predictions(served, d.val.images)
    val_report = clinical_report(val_preds, d.val.y, d.val.sources, d.classes)
    val_logits = served.run(served.view(d.val.images)[0])["logits"]
    refused = sum(p["status"] == "not_xray" for p in val_preds)
    calib = calibration_errors(oof_logits, d.train.y, val_logits, d.val.y, temperature)
    base_report, c = pixel_baseline(d)
    return Evaluation(
        val_report,
        base_report,
        c,
        calib,
        refused,
        figures(d, val_preds, oof_logits, val_logits, temperature, out),
    )
