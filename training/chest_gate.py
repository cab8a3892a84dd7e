"""Fitting check 4 of the "not a chest X-ray" gate against real negatives.

The three checks of :mod:`serving.ood` are fitted on chest X-rays alone and let through
what looks enough like one: lateral chest views, some hands, pelvises and CT slices
(measured on ``../shared/not-chest-xray/val``). Check 4 is a logistic regression, "frontal
chest X-ray or not", on the network's pooled features and the 32x32 thumbnail, fitted on
the train split's chest X-rays against ``../shared/not-chest-xray/train``.

* Its regularisation is chosen by grouped 5-fold cross-validation (patients for chest
  films, the negatives' recorded groups otherwise), on log loss.
* Its threshold comes from the out-of-fold probabilities of the CHEST films only: the
  99th percentile (at least 0.5), so that about 1% of unseen chest films are refused by
  it. Val is never used to choose anything.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serving.ood import negative_inputs
from serving.preprocessing import IMAGE_SIZE, ImageError, preprocess_path

C_GRID = (0.001, 0.01, 0.1)
CHEST_KEEP_QUANTILE = 0.99


@dataclass
class Negatives:
    """Decoded negatives with their kind and group (patient, repository or image)."""

    images: np.ndarray
    kinds: np.ndarray
    groups: np.ndarray


def load_negatives(root: Path, split: str, size: int = IMAGE_SIZE) -> Negatives:
    """``root/<split>/<kind>/*`` decoded to the model contract; undecodable files skipped."""
    meta: dict[str, str] = {}
    if (root / "metadata.csv").is_file():
        with (root / "metadata.csv").open(newline="") as fh:
            meta = {r["file"]: r.get("group") or r["file"] for r in csv.DictReader(fh)}
    images, kinds, groups = [], [], []
    for path in sorted(p for p in (root / split).glob("*/*") if p.is_file()):
        try:
            images.append(preprocess_path(path, size))
        except (ImageError, OSError):
            continue
        rel = path.relative_to(root).as_posix()
        kinds.append(path.parent.name)
        groups.append(f"{path.parent.name}:{meta.get(rel, rel)}")
    stacked = np.stack(images) if images else np.zeros((0, size, size), np.uint8)
    return Negatives(stacked, np.array(kinds), np.array(groups))


@dataclass
class NegativeCheck:
    """Fitted parameters of check 4 and how it did out of fold."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float
    c: float
    oof_chest_refused: float  # share of chest films refused out of fold
    oof_negatives_caught: float  # share of negatives caught out of fold


def fit_negative_check(
    chest_x: np.ndarray, chest_groups: np.ndarray, neg_x: np.ndarray, neg_groups: np.ndarray,
    seed: int = 42,
) -> NegativeCheck:
    """Fit on inputs from :func:`serving.ood.negative_inputs`; see the module docstring."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedGroupKFold

    x = np.concatenate([chest_x, neg_x]).astype(np.float64)
    y = np.concatenate([np.zeros(len(chest_x), int), np.ones(len(neg_x), int)])
    groups = np.concatenate([chest_groups, neg_groups])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    folds = list(StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(z, y, groups))

    def oof(c: float) -> np.ndarray:
        prob = np.zeros(len(y))
        for train, held in folds:
            lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
            prob[held] = lr.fit(z[train], y[train]).predict_proba(z[held])[:, 1]
        return prob

    scored = {c: oof(c) for c in C_GRID}
    best = min(C_GRID, key=lambda c: log_loss(y, np.clip(scored[c], 1e-7, 1 - 1e-7)))
    prob = scored[best]
    threshold = max(0.5, float(np.quantile(prob[y == 0], CHEST_KEEP_QUANTILE)))
    final = LogisticRegression(C=best, class_weight="balanced", max_iter=2000).fit(z, y)
    return NegativeCheck(
        mean=mean,
        scale=scale,
        coef=final.coef_[0].astype(np.float64),
        intercept=float(final.intercept_[0]),
        threshold=threshold,
        c=best,
        oof_chest_refused=float(np.mean(prob[y == 0] > threshold)),
        oof_negatives_caught=float(np.mean(prob[y == 1] > threshold)),
    )


def attach(detector, check: NegativeCheck):
    """The detector with check 4 set (the three other checks unchanged)."""
    detector.neg_mean, detector.neg_scale = check.mean, check.scale
    detector.neg_coef, detector.neg_intercept = check.coef, check.intercept
    detector.neg_threshold = check.threshold
    return detector


def inputs_of(model, images: np.ndarray) -> np.ndarray:
    """Check 4's inputs for ``images`` through a loaded pyfunc's network."""
    images, _ = model.view(images)
    feats = [model.run(images[i : i + 64])["features"] for i in range(0, len(images), 64)]
    return negative_inputs(images, np.concatenate(feats))
