"""The cross-validation stage: k-fold cross-validation on the train split chooses the
hyper-parameters (:func:`grid_search`), early stopping, temperature and decision threshold;
the fold models of the chosen setting become the shipped ensemble."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from serving.decision import softmax
from training.data import Dataset
from training.fit import HParams, predict_logits, train_member


@dataclass
class CVResult:
    """Members, out-of-fold logits and per-fold figures of one hyper-parameter setting."""

    hp: HParams
    members: list = field(default_factory=list)
    oof_logits: np.ndarray | None = None
    histories: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    fold_accuracy: list[float] = field(default_factory=list)
    fold_loss: list[float] = field(default_factory=list)

    @property
    def score(self) -> float:
        """Selection criterion: mean held-out weighted log loss (lower is better)."""
        return float(np.mean(self.fold_loss))


def weighted_nll(logits: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Weighted mean negative log-likelihood."""
    p = softmax(logits)[np.arange(len(y)), y]
    return float(np.sum(-np.log(np.clip(p, 1e-12, 1)) * w) / np.sum(w))


def cross_validate(
    train: Dataset,
    weights: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    hp: HParams,
    seed: int,
    size: int,
    on_epoch=None,
    init_members: list | None = None,
) -> CVResult:
    """Train one member per fold, early-stopped on its held-out fold (each starting from
    ``init_members[fold % len]`` when fine-tuning)."""
    y, images = train.y, train.images
    n_classes = len(train.classes)
    result = CVResult(hp, oof_logits=np.zeros((len(y), n_classes), np.float32))
    verbose = 1 if sys.stdout.isatty() else 2
    for f, (tr, te) in enumerate(folds):
        print(f"--- fold {f + 1}/{len(folds)}: {len(tr)} train, {len(te)} held out ---", flush=True)

        def sink(epoch, logs, f=f):
            if on_epoch is not None:
                on_epoch(f, epoch, logs)

        member, history = train_member(
            (images[tr], y[tr], weights[tr]),
            (images[te], y[te], weights[te]),
            n_classes,
            size,
            hp,
            seed=seed + 101 * f,
            name=f"fold{f}",
            on_epoch=sink,
            verbose=verbose,
            init=init_members[f % len(init_members)] if init_members else None,
        )
        logits = predict_logits(member, images[te])
        result.oof_logits[te] = logits
        result.members.append(member)
        result.histories[f"fold{f}"] = history
        result.fold_accuracy.append(float(np.mean(np.argmax(logits, 1) == y[te])))
        result.fold_loss.append(weighted_nll(logits, y[te], weights[te]))
    return result


def choose_best(results: list[CVResult]) -> CVResult:
    """The setting with the lowest mean held-out loss (the first one on a tie)."""
    return min(results, key=lambda r: r.score)


def grid_search(
    train: Dataset,
    weights: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    grid: list[HParams],
    seed: int,
    size: int,
    on_epoch: Callable[[int, int, int, dict], None] | None = None,
    on_setting: Callable[[int, CVResult], None] | None = None,
    init_members: list | None = None,
) -> tuple[CVResult, list[CVResult]]:
    """Cross-validate every setting of ``grid``; returns ``(best, all results in grid order)``.

    ``on_epoch(setting, fold, epoch, logs)`` and ``on_setting(setting, result)`` report
    progress as it happens (a long search is watched live in MLflow).
    """
    results: list[CVResult] = []
    for g, hp in enumerate(grid):

        def sink(fold: int, epoch: int, logs: dict, g: int = g) -> None:
            if on_epoch is not None:
                on_epoch(g, fold, epoch, logs)

        res = cross_validate(train, weights, folds, hp, seed, size, sink,
                             init_members=init_members)
        if on_setting is not None:
            on_setting(g, res)
        results.append(res)
    return choose_best(results), results
