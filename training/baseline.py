"""The baseline every CNN must beat: logistic regression on 32x32 pixels."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from serving.preprocessing import thumbnails

SIZE = 32


def features(images: np.ndarray) -> np.ndarray:
    """uint8 images -> standardised 32x32 pixel vectors (per-image normalised like the CNN)."""
    return thumbnails(images, SIZE)


def fit(images: np.ndarray, y: np.ndarray, weights: np.ndarray, c: float = 0.01):
    """Fit on uint8 images with per-image weights (the same balancing as the CNN)."""
    model = LogisticRegression(C=c, max_iter=3000)
    return model.fit(features(images), y, sample_weight=weights)


def predict_proba(model, images: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities, one column per class even if a class was absent in training."""
    proba = np.zeros((len(images), n_classes))
    proba[:, model.classes_] = model.predict_proba(features(images))
    return proba


def choose_c(images, y, weights, folds, n_classes: int, grid=(0.001, 0.01, 0.1)) -> float:
    """Regularisation chosen by the same cross-validation folds as the CNN (log loss)."""
    best, best_loss = grid[0], np.inf
    for c in grid:
        losses = []
        for tr, te in folds:
            p = predict_proba(fit(images[tr], y[tr], weights[tr], c), images[te], n_classes)
            losses.append(-np.mean(np.log(np.clip(p[np.arange(len(te)), y[te]], 1e-12, 1))))
        if np.mean(losses) < best_loss:
            best, best_loss = c, float(np.mean(losses))
    return best
