"""Fitting the unfamiliar-film flag (:mod:`serving.familiarity`) on the train split.

The threshold is a quantile of distances of films the reference does not hold, from
patients the model never saw but of hospitals it knows: out of fold (patient-grouped), as
an unseen patient of a known hospital would be scored. ``TARGET`` is the share of such
films flagged; films of an unseen hospital are flagged far more often (measured by
leave-one-source-out in :mod:`training.frozen_loso`, the figures in the model card).
"""

from __future__ import annotations

import numpy as np

from serving.familiarity import Familiarity, knn_distance, normalise, rms_scale

# Neighbours averaged, and the share of unseen patients of known hospitals flagged.
K = 10
TARGET = 0.10


def fit(reference: np.ndarray, calibration: np.ndarray, k: int = K,
        target: float = TARGET) -> Familiarity:
    """Reference films' features; threshold at the ``1 - target`` quantile of the distances
    of the ``calibration`` films (patients the reference does not hold)."""
    mean = reference.mean(axis=0)
    scale = rms_scale(reference, mean)
    ref = normalise(reference, mean, scale)
    scores = knn_distance(normalise(calibration, mean, scale), ref, k)
    return Familiarity(mean.astype(np.float32), scale, ref, k,
                       float(np.quantile(scores, 1 - target)))


def fit_leave_patient_out(features: np.ndarray, groups: np.ndarray | None = None,
                          k: int = K, target: float = TARGET) -> Familiarity:
    """Reference: every train film; threshold: the quantile of each film's distance to the
    films of the OTHER patients (the shipped flag). Leaving one patient out, not a fold:
    the reference a served film meets holds every film, and a fold's worth fewer neighbours
    would make every distance larger and the flag fire less than ``target`` says."""
    mean = features.mean(axis=0)
    scale = rms_scale(features, mean)
    ref = normalise(features, mean, scale)
    groups = np.arange(len(ref)) if groups is None else np.asarray(groups)
    # a patient is not its own neighbour (a second film of one patient is nearly the first)
    scores = knn_distance(ref, ref, k, exclude=groups[:, None] == groups[None, :])
    return Familiarity(mean.astype(np.float32), scale, ref, k,
                       float(np.quantile(scores[np.isfinite(scores)], 1 - target)))
