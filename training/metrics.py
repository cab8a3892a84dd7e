"""The figures Radio reports: per source, never a single accuracy; threshold choice.

The decision rule itself lives in :mod:`serving.decision` (what the model server runs).
"""

from __future__ import annotations

import numpy as np

from serving.decision import COVID, decide


def choose_covid_threshold(probs: np.ndarray, y: np.ndarray, classes: list[str]) -> float:
    """Threshold maximising balanced accuracy (mean per-class recall) on out-of-fold data.

    Ties go to the lower threshold: a missed COVID costs more than a second look.
    """
    best_t, best_score = 0.5, -1.0
    for t in np.round(np.arange(0.10, 0.905, 0.01), 2):
        pred = decide(probs, classes, float(t))
        recalls = [np.mean(pred[y == k] == k) for k in range(len(classes)) if np.any(y == k)]
        score = float(np.mean(recalls))
        if score > best_score + 1e-9:
            best_t, best_score = float(t), score
    return best_t


def report(
    probs: np.ndarray, y: np.ndarray, classes: list[str], pred: np.ndarray
) -> dict[str, float]:
    """Accuracy, COVID recall, non-COVID called COVID, per-class P/R/F1 and macro ROC-AUC."""
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    out: dict[str, float] = {"n": float(len(y)), "accuracy": float(np.mean(pred == y))}
    labels = list(range(len(classes)))
    p, r, f, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    for k, name in enumerate(classes):
        if support[k]:
            key = name.replace(" ", "_")
            out[f"precision_{key}"] = float(p[k])
            out[f"recall_{key}"] = float(r[k])
            out[f"f1_{key}"] = float(f[k])
    if COVID in classes:
        c = classes.index(COVID)
        if np.any(y == c):
            out["covid_recall"] = float(np.mean(pred[y == c] == c))
        if np.any(y != c):
            out["non_covid_called_covid"] = float(np.mean(pred[y != c] == c))
    present = [k for k in labels if np.any(y == k)]
    if len(present) >= 2:
        aucs = [roc_auc_score(y == k, probs[:, k]) for k in present]
        out["macro_auc"] = float(np.mean(aucs))
    return out


def report_by_source(
    probs: np.ndarray,
    y: np.ndarray,
    sources: np.ndarray,
    classes: list[str],
    covid_threshold: float | None,
) -> dict[str, dict[str, float]]:
    """:func:`report` for each source and for their union (key ``union``)."""
    pred = decide(probs, classes, covid_threshold)
    result = {"union": report(probs, y, classes, pred)}
    for src in sorted(set(sources)):
        m = sources == src
        result[str(src)] = report(probs[m], y[m], classes, pred[m])
    return result
