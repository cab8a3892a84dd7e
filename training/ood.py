"""Is this a frontal chest X-ray at all? Cheap image checks plus a feature-space distance.

* Image checks on the preprocessed uint8 image: a blank image (tiny contrast) or noise
  (most of the energy in pixel-to-pixel differences) is rejected before any distance.
* Mahalanobis distance of the classifier's own pooled features to the training set
  (shrunk covariance, fitted at training time). The threshold is set from the training
  images' own distances with a fixed margin, never from the val split.

NumPy only at serving time; :func:`fit` uses scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Fixed before looking at any val image: in-sample distances run low, so the threshold is
# well above the largest training distance.
QUANTILE = 0.99
MARGIN = 1.5


def image_stats(images: np.ndarray) -> np.ndarray:
    """``(N, 2)``: grey-level std, and roughness (mean |neighbour difference| / std)."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    std = x.std(axis=(1, 2))
    diff = np.abs(np.diff(x, axis=2)).mean(axis=(1, 2)) + np.abs(np.diff(x, axis=1)).mean(
        axis=(1, 2)
    )
    return np.stack([std, diff / np.maximum(std, 1e-3)], axis=1)


@dataclass
class OODDetector:
    """Fitted parameters; saved to and loaded from an ``.npz`` next to the model."""

    mean: np.ndarray
    precision: np.ndarray
    threshold: float
    min_std: float
    max_roughness: float

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each feature row to the training distribution."""
        d = np.asarray(features, dtype=np.float64) - self.mean
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, self.precision, d), 0.0))

    def check(self, images: np.ndarray, features: np.ndarray) -> list[tuple[float, str | None]]:
        """Per image: (distance, reason it is not a chest X-ray, or None if it looks like one)."""
        stats = image_stats(images)
        dist = self.distance(features)
        out = []
        for (std, rough), d in zip(stats, dist, strict=True):
            if std < self.min_std:
                reason = "The image is blank or has almost no contrast."
            elif rough > self.max_roughness:
                reason = "The image looks like noise, not a radiograph."
            elif d > self.threshold:
                reason = "The image does not look like a frontal chest X-ray."
            else:
                reason = None
            out.append((float(d), reason))
        return out

    def save(self, path) -> None:
        """Write the parameters to ``path`` (.npz)."""
        np.savez(
            path,
            mean=self.mean,
            precision=self.precision,
            threshold=self.threshold,
            min_std=self.min_std,
            max_roughness=self.max_roughness,
        )

    @classmethod
    def load(cls, path) -> OODDetector:
        """Read parameters written by :meth:`save`."""
        z = np.load(path)
        return cls(
            z["mean"],
            z["precision"],
            float(z["threshold"]),
            float(z["min_std"]),
            float(z["max_roughness"]),
        )


def fit(features: np.ndarray, images: np.ndarray) -> OODDetector:
    """Fit on the training images' features and pixels."""
    from sklearn.covariance import LedoitWolf

    lw = LedoitWolf().fit(features.astype(np.float64))
    det = OODDetector(lw.location_, lw.precision_, 0.0, 0.0, 0.0)
    dist = det.distance(features)
    det.threshold = float(np.quantile(dist, QUANTILE) * MARGIN)
    stats = image_stats(images)
    det.min_std = float(stats[:, 0].min() * 0.5)
    det.max_roughness = float(stats[:, 1].max() * MARGIN)
    return det
