"""Is this a frontal chest X-ray at all? Three checks fitted on the train split's chest
X-rays, and a fourth fitted against real negatives when the model has one.

1. Image statistics of the preprocessed uint8 image: contrast (blank images) and
   roughness (mean neighbour difference / std: noise is rough, gradients and flat
   drawings are too smooth), against the range seen on training X-rays.
2. Feature space: for each cross-validation fold k, a Mahalanobis distance (shrunk
   covariance) on member k's pooled features, fitted on the images member k trained on.
3. Pixel space: for each fold k, the residual of a PCA of 32x32 thumbnails fitted on the
   same images: chest X-rays share one layout (lungs, heart, spine), other pictures do not.

Each fold's distance is divided by the largest distance among that fold's HELD-OUT train
images, which the fold's model and statistics never saw: unseen chest X-rays are what the
threshold is calibrated on, not the (overfitted) training images themselves. The score of
a check is the median over folds; an image is rejected when a score exceeds 1.

The runtime half (NumPy): scoring and the decision. Fitting is :mod:`training.ood`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.preprocessing import thumbnails

PCA_COMPONENTS = 20
# Image statistics: outside [min / STATS_MARGIN, max * STATS_MARGIN] of the training range.
STATS_MARGIN = 1.5


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


def _mahalanobis(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    d = np.asarray(x, dtype=np.float64) - mean
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, precision, d), 0.0))


def _pca_residual(x: np.ndarray, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64) - mean
    return np.linalg.norm(z - (z @ basis.T) @ basis, axis=1)


@dataclass
class OODDetector:
    """Fitted parameters (one row per fold); saved to and loaded from an ``.npz``."""

    feat_mean: np.ndarray  # (K, D)
    feat_precision: np.ndarray  # (K, D, D)
    feat_scale: np.ndarray  # (K,)
    pix_mean: np.ndarray  # (K, P)
    pix_basis: np.ndarray  # (K, C, P)
    pix_scale: np.ndarray  # (K,)
    std_range: np.ndarray  # (2,)
    rough_range: np.ndarray  # (2,)
    threshold: float = 1.0
    # 4. Optional (models fitted with real negatives): a logistic regression "frontal chest
    # X-ray or not" on [network features, 32x32 thumbnail], fitted on chest X-rays against
    # real radiographs and scans that are not frontal chest films (lateral chest views,
    # other body parts, CT, MRI...), which the three checks above, fitted on chest X-rays
    # alone, let through. Rejects when P(not a frontal chest X-ray) exceeds neg_threshold.
    neg_mean: np.ndarray | None = None  # (F,) standardisation
    neg_scale: np.ndarray | None = None  # (F,)
    neg_coef: np.ndarray | None = None  # (F,)
    neg_intercept: float = 0.0
    neg_threshold: float = 1.0

    def scores(self, images: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per image: (feature score, pixel score); above 1 means unlike every X-ray seen."""
        k = len(self.feat_scale)
        width = features.shape[1] // k
        feat = np.median(
            [
                _mahalanobis(
                    features[:, i * width : (i + 1) * width],
                    self.feat_mean[i],
                    self.feat_precision[i],
                )
                / self.feat_scale[i]
                for i in range(k)
            ],
            axis=0,
        )
        thumbs = thumbnails(images)
        pix = np.median(
            [
                _pca_residual(thumbs, self.pix_mean[i], self.pix_basis[i]) / self.pix_scale[i]
                for i in range(k)
            ],
            axis=0,
        )
        return feat, pix

    def not_chest_probability(self, images: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Per image: P(not a frontal chest X-ray) from check 4 (zeros when not fitted)."""
        if self.neg_coef is None:
            return np.zeros(len(images))
        z = (negative_inputs(images, features) - self.neg_mean) / self.neg_scale
        logit = np.clip(z @ self.neg_coef + self.neg_intercept, -50.0, 50.0)
        return 1.0 / (1.0 + np.exp(-logit))

    def check(self, images: np.ndarray, features: np.ndarray) -> list[tuple[float, str | None]]:
        """Per image: (score, reason it is not a chest X-ray, or None if it looks like one)."""
        stats = image_stats(images)
        feat, pix = self.scores(images, features)
        neg = self.not_chest_probability(images, features)
        out = []
        for (std, rough), f, p, q in zip(stats, feat, pix, neg, strict=True):
            if std < self.std_range[0]:
                reason = "The image is blank or has almost no contrast."
            elif rough > self.rough_range[1]:
                reason = "The image looks like noise, not a radiograph."
            elif rough < self.rough_range[0]:
                reason = "The image is too smooth to be a radiograph (a drawing or gradient?)."
            elif q > self.neg_threshold:
                reason = (
                    "The image looks like another kind of radiograph or scan (a lateral view, "
                    "another body part, CT, MRI...), not a frontal chest X-ray."
                )
            elif p > self.threshold:
                reason = "The image does not have the layout of a frontal chest X-ray."
            elif f > self.threshold:
                reason = "The image does not look like a frontal chest X-ray to the model."
            else:
                reason = None
            out.append((float(max(f, p)), reason))
        return out

    def save(self, path) -> None:
        """Write the parameters to ``path`` (.npz); an unfitted check 4 is left out."""
        np.savez(path, **{k: np.asarray(v) for k, v in self.__dict__.items() if v is not None})

    @classmethod
    def load(cls, path) -> OODDetector:
        """Read parameters written by :meth:`save` (older files have no check 4)."""
        z = np.load(path)
        fields = {k: z[k] for k in z.files}
        for scalar in ("threshold", "neg_intercept", "neg_threshold"):
            if scalar in fields:
                fields[scalar] = float(fields[scalar])
        return cls(**fields)


def negative_inputs(images: np.ndarray, features: np.ndarray) -> np.ndarray:
    """The inputs of check 4: the ensemble's pooled features and the 32x32 thumbnail."""
    return np.concatenate([np.asarray(features, np.float64), thumbnails(images)], axis=1)
