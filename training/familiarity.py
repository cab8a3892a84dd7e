"""Fitting the unfamiliar-film flag (:mod:`serving.familiarity`) on the train split.

The threshold is a quantile of distances of films the reference does not hold, from
patients the model never saw but of hospitals it knows: out of fold (patient-grouped), as
an unseen patient of a known hospital would be scored. ``TARGET`` is the share of such
films flagged; films of an unseen hospital are flagged far more often (measured by
leave-one-source-out in :mod:`training.frozen_loso`, the figures in the model card).
"""

from __future__ import annotations

import numpy as np

from serving.familiarity import Familiarity, knn_distance, normalise

# Neighbours averaged, and the share of unseen patients of known hospitals flagged.
K = 10
TARGET = 0.10


def fit(reference: np.ndarray, calibration: np.ndarray, k: int = K,
        target: float = TARGET) -> Familiarity:
    """Reference films' features; threshold at the ``1 - target`` quantile of the distances
    of the ``calibration`` films (patients the reference does not hold)."""
    mean = reference.mean(axis=0)
    ref = normalise(reference, mean)
    scores = knn_distance(normalise(calibration, mean), ref, k)
    return Familiarity(mean.astype(np.float32), ref, k, float(np.quantile(scores, 1 - target)))


def fit_out_of_fold(features: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
                    k: int = K, target: float = TARGET) -> Familiarity:
    """Reference: every train film; threshold: the quantile of each fold's held-out films'
    distances to the films of the other folds (the shipped flag)."""
    scores = []
    for tr, te in folds:
        mean = features[tr].mean(axis=0)
        scores.append(knn_distance(normalise(features[te], mean),
                                   normalise(features[tr], mean), k))
    mean = features.mean(axis=0)
    return Familiarity(mean.astype(np.float32), normalise(features, mean), k,
                       float(np.quantile(np.concatenate(scores), 1 - target)))
