"""Fitting the "not a chest X-ray" gate on the train split (scikit-learn).

The checks, their scores and the decision are described and run in :mod:`serving.ood`;
this module only estimates their parameters.
"""

from __future__ import annotations

import numpy as np

from serving.ood import (
    PCA_COMPONENTS,
    STATS_MARGIN,
    OODDetector,
    _mahalanobis,
    _pca_residual,
    image_stats,
)
from serving.preprocessing import thumbnails


def fit(
    features: np.ndarray, images: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
) -> OODDetector:
    """Fit on the train split; ``features[:, k*D:(k+1)*D]`` are fold k's member's features."""
    from sklearn.covariance import LedoitWolf

    k = len(folds)
    width = features.shape[1] // k
    thumbs = thumbnails(images)
    fm, fp, fs, pm, pb, ps = [], [], [], [], [], []
    for i, (train, held) in enumerate(folds):
        f = features[:, i * width : (i + 1) * width].astype(np.float64)
        lw = LedoitWolf().fit(f[train])
        fm.append(lw.location_)
        fp.append(lw.precision_)
        fs.append(_mahalanobis(f[held], lw.location_, lw.precision_).max())
        mean = thumbs[train].mean(axis=0).astype(np.float64)
        _, _, vt = np.linalg.svd(thumbs[train] - mean, full_matrices=False)
        basis = vt[:PCA_COMPONENTS]
        pm.append(mean)
        pb.append(basis)
        ps.append(_pca_residual(thumbs[held], mean, basis).max())
    stats = image_stats(images)
    return OODDetector(
        np.array(fm),
        np.array(fp),
        np.array(fs),
        np.array(pm),
        np.array(pb),
        np.array(ps),
        std_range=np.array([stats[:, 0].min() / STATS_MARGIN, np.inf]),
        rough_range=np.array([stats[:, 1].min() / STATS_MARGIN, stats[:, 1].max() * STATS_MARGIN]),
    )
