"""Is this film like the films Radio learned from? The "unfamiliar film" review flag.

A film can be a frontal chest X-ray (it passes the gate of :mod:`serving.ood`) and still
come from a hospital, detector or population the model never saw. There the answers are
least trustworthy: measured before this flag, 70-75% of normal adults from unseen
hospitals were called COVID. The measure is the network's own view of the film: its
pooled backbone features, centred on the training films' mean and divided by their RMS
norm, and the mean Euclidean distance to the ``k`` nearest training films (Euclidean, not
cosine: a film far out along a direction some training films share is still far). Far
from every training film = unfamiliar: the answer stands, but with ``needs_review`` and a
reason the clinician reads.

The threshold is calibrated on patient-grouped out-of-fold distances of the training films
(a film scored against the folds it was not in, i.e. as an unseen patient of a known
hospital would be), and checked by leave-one-source-out (:mod:`training.familiarity`).

NumPy only (the model server imports it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REASON = ("Unfamiliar film: this film is unlike the films Radio learned from (another "
          "hospital, detector or patient group?); the answer is less reliable here.")


def normalise(features: np.ndarray, mean: np.ndarray, scale: float) -> np.ndarray:
    """Rows centred on ``mean`` and divided by ``scale`` (float32)."""
    return (np.asarray(features, np.float32) - np.asarray(mean, np.float32)) / np.float32(scale)


def rms_scale(features: np.ndarray, mean: np.ndarray) -> float:
    """The root mean square norm of the centred rows (distances then read in its units)."""
    z = np.asarray(features, np.float64) - mean
    return float(max(np.sqrt(np.mean(np.sum(z * z, axis=1))), 1e-6))


def knn_distance(queries: np.ndarray, reference: np.ndarray, k: int,
                 exclude: np.ndarray | None = None) -> np.ndarray:
    """Mean Euclidean distance of each query to its ``k`` nearest reference rows
    (``exclude``: a boolean ``(queries, reference)`` mask of pairs that may not count)."""
    q, r = np.asarray(queries, np.float32), np.asarray(reference, np.float32)
    d2 = (q * q).sum(1)[:, None] + (r * r).sum(1)[None, :] - 2.0 * (q @ r.T)
    if exclude is not None:
        d2 = np.where(exclude, np.inf, d2)
    k = min(k, d2.shape[1])
    nearest = np.partition(d2, k - 1, axis=1)[:, :k]
    return np.sqrt(np.maximum(nearest, 0.0)).mean(axis=1)


@dataclass
class Familiarity:
    """Fitted parameters; saved to and loaded from an ``.npz``."""

    mean: np.ndarray  # (D,) centre of the training features
    scale: float  # their RMS norm around it
    reference: np.ndarray  # (M, D) normalised training features (float16 on disk)
    k: int
    threshold: float  # above it: unfamiliar

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Per film: mean distance to its ``k`` nearest training films."""
        return knn_distance(normalise(features, self.mean, self.scale), self.reference, self.k)

    def unfamiliar(self, features: np.ndarray) -> np.ndarray:
        """Per film: True when farther from the training films than the threshold."""
        return self.scores(features) > self.threshold

    def save(self, path) -> None:
        """Write to ``path`` (.npz); the reference in float16 (half the registry size, the
        distances change by < 1e-3)."""
        np.savez(path, mean=self.mean.astype(np.float32), scale=self.scale,
                 reference=self.reference.astype(np.float16), k=self.k,
                 threshold=self.threshold)

    @classmethod
    def load(cls, path) -> Familiarity:
        """Read what :meth:`save` wrote."""
        z = np.load(path)
        return cls(z["mean"], float(z["scale"]), z["reference"].astype(np.float32),
                   int(z["k"]), float(z["threshold"]))
