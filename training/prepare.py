"""The data stage of a training run: which images train and validate, with what weight,
in which cross-validation fold, under which dataset version.

Everything later (cross-validation, packaging, evaluation, tracking) reads a
:class:`RunData`; nothing after this stage touches the image folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training import data, sampling
from training.data import Dataset
from training.sources import Source


@dataclass
class RunData:
    """The train and val splits of a run, with loss weights and patient folds of train."""

    train: Dataset
    val: Dataset
    version: str
    weights: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    fold_of: np.ndarray
    skipped: list[tuple[Path, str]]

    @property
    def classes(self) -> list[str]:
        """The model's classes, in output order (those of the train split)."""
        return self.train.classes


def limit_per_group(ds: Dataset, n: int | None) -> Dataset:
    """At most ``n`` images per (source, class), in file order; ``None`` keeps everything."""
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


def fold_index(folds: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """For each of ``n`` images, the fold in which it is held out."""
    fold_of = np.zeros(n, int)
    for f, (_, held_out) in enumerate(folds):
        fold_of[held_out] = f
    return fold_of


def prepare(
    sources: Sequence[Source],
    size: int,
    limit: int | None,
    balance: str,
    n_folds: int,
    seed: int,
    classes: list[str] | None = None,
) -> RunData:
    """Load, limit and balance the splits; weights and folds of train; the data version.

    ``balance`` is ``"weights"`` (per-image loss weights) or ``"downsample"`` (every class
    cut to the minority class's count, unit weights). ``classes``: the model's outputs when
    they must not follow the data (fine-tuning keeps the parent's outputs).
    """
    train_all = data.load(sources, "train", classes=classes, size=size)
    val_all = data.load(sources, "val", classes=train_all.classes, size=size)
    # Taken before limiting: Dataset.subset keeps only the decoded images, and an
    # unreadable file must be reported whatever the limit.
    skipped = train_all.skipped + val_all.skipped
    train = limit_per_group(train_all, limit)
    val = limit_per_group(val_all, limit)
    # The version names the images offered to the run, before balancing drops any: the
    # same folders and options always give the same version.
    version = data.dataset_version([train, val])
    if balance == "downsample":
        train = train.subset(sampling.downsample(train, seed))
        weights = np.ones(len(train.samples), np.float32)
    else:
        weights = sampling.balanced_weights(train)
    folds = sampling.patient_folds(train, n_folds, seed)
    return RunData(
        train, val, version, weights, folds, fold_index(folds, len(train.samples)), skipped
    )
