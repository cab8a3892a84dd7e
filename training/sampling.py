"""Which images train, with what weight, in which fold.

Balancing is by class AND by source: each class weighs the same in the loss, and inside a
class each source weighs the same, so no hospital can dominate a class. Alternatively
(``downsample``, the reference design) every class is cut to the minority class's count.
Either way the exact list of images used is written to a metadata CSV.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from training.data import Dataset


def balanced_weights(ds: Dataset) -> np.ndarray:
    """Per-image loss weights, mean 1, equal total per class and per source within a class."""
    keys = [(s.label, s.source) for s in ds.samples]
    per_group = Counter(keys)
    sources_per_class = Counter(label for label, _ in per_group)
    n_classes = len(sources_per_class)
    w = np.array(
        [1.0 / (n_classes * sources_per_class[k[0]] * per_group[k]) for k in keys],
        dtype=np.float64,
    )
    return (w * len(w) / w.sum()).astype(np.float32)


def downsample(ds: Dataset, seed: int) -> np.ndarray:
    """Indices of a class-balanced subset: every class cut to the minority class's count.

    Within a class the cut keeps sources as even as possible, so the minority source of a
    class is never the one dropped.
    """
    rng = np.random.default_rng(seed)
    by_class: dict[str, dict[str, list[int]]] = {}
    for i, s in enumerate(ds.samples):
        by_class.setdefault(s.label, {}).setdefault(s.source, []).append(i)
    target = min(sum(len(v) for v in sources.values()) for sources in by_class.values())
    keep: list[int] = []
    for sources in by_class.values():
        pools = {src: list(rng.permutation(idx)) for src, idx in sorted(sources.items())}
        taken = 0
        while taken < target:  # round-robin over sources
            for pool in pools.values():
                if pool and taken < target:
                    keep.append(int(pool.pop()))
                    taken += 1
    return np.array(sorted(keep))


def patient_folds(ds: Dataset, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, held-out) index pairs, stratified by class+source, never splitting a patient."""
    strata = np.array([f"{s.label}|{s.source}" for s in ds.samples])
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(strata)), strata, ds.groups))


def write_metadata(
    path: Path, ds: Dataset, weights: np.ndarray, fold_of: np.ndarray | None = None
) -> Path:
    """CSV of exactly the images used: source, split, class, file, patient, weight, fold."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source", "split", "label", "file", "patient", "weight", "fold"])
        for i, s in enumerate(ds.samples):
            fold = "" if fold_of is None else int(fold_of[i])
            writer.writerow(
                [s.source, s.split, s.label, s.relpath, s.patient, f"{weights[i]:.6f}", fold]
            )
    return path
