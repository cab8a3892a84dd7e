"""The frozen-backbone recipe: ImageNet EfficientNet-Lite0 features + a linear head.

Fine-tuning 4.65 M parameters on a few hundred films and 2 CPU cores overfits and costs
minutes per epoch; the ImageNet features stay fixed here and only the head is fitted: a
class-balanced multinomial logistic regression on the pooled 1280 features, its L2
strength chosen by patient-grouped cross-validation (out-of-fold log loss). The heads of
the folds become the shipped network's one Dense layer (their mean: the mean of linear
heads on the same features is the linear head of the means, so the fold "ensemble" costs
one backbone pass), and the class activation map stays exact.

The served graph (:func:`build_frozen_ensemble`) has the outputs every Radio network has
(``logits``, ``cam``, ``features``: the OOD gate's per-fold features, here a PCA of the
pooled features repeated per fold) and one more, ``embedding`` (the 1280 pooled
features), which the unfamiliar-film flag (:mod:`serving.familiarity`) reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from serving.decision import softmax

# Inverse L2 strengths tried by cross-validation (on standardised features).
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1)
# Width of the OOD gate's feature check (a Mahalanobis distance needs far fewer
# dimensions than films: 1280 would not fit in a covariance of ~1,000 films).
PCA_WIDTH = 32


def features_of(images: np.ndarray, cache: Path | None = None) -> np.ndarray:
    """Pooled ImageNet features ``(N, 1280)`` of uint8 ``(N, H, W)`` images, each kept in
    ``cache`` (a folder) under the hash of its pixels: experiments re-read, never recompute."""
    from training.pretrained import imagenet_features

    if cache is None:
        return imagenet_features(images)
    cache = Path(cache)
    paths = [cache / f"{hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest()[:32]}.npy"
             for im in images]
    todo = [i for i, p in enumerate(paths) if not p.is_file()]
    if todo:
        cache.mkdir(parents=True, exist_ok=True)
        for i, f in zip(todo, imagenet_features(images[todo]), strict=True):
            np.save(paths[i], f)
    return np.stack([np.load(p) for p in paths]) if paths else imagenet_features(images)


@dataclass
class Head:
    """A linear head on the raw pooled features: ``logits = features @ kernel + bias``."""

    kernel: np.ndarray  # (D, C)
    bias: np.ndarray  # (C,)

    def logits(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features, np.float64) @ self.kernel + self.bias


def fit_head(features: np.ndarray, y: np.ndarray, weights: np.ndarray, c: float,
             n_classes: int) -> Head:
    """Weighted multinomial logistic regression on standardised features, folded back to
    the raw features (the served graph standardises nothing)."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, np.float64)
    mu, sd = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    lr = LogisticRegression(C=c, max_iter=2000)
    lr.fit((x - mu) / sd, y, sample_weight=weights)
    coef = np.zeros((n_classes, x.shape[1]))
    intercept = np.full(n_classes, -30.0)  # a class absent from this fold: never chosen
    coef[lr.classes_], intercept[lr.classes_] = lr.coef_, lr.intercept_
    if len(lr.classes_) == 2:  # sklearn's binary form: one row for class 1
        coef[lr.classes_] = np.stack([-lr.coef_[0] / 2, lr.coef_[0] / 2])
        intercept[lr.classes_] = [-lr.intercept_[0] / 2, lr.intercept_[0] / 2]
    kernel = (coef / sd).T
    return Head(kernel, intercept - (mu / sd) @ coef.T)


def weighted_nll(logits: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    p = softmax(logits)[np.arange(len(y)), y]
    return float(np.sum(-np.log(np.clip(p, 1e-12, 1)) * w) / np.sum(w))


@dataclass
class HeadCV:
    """The chosen strength, its fold heads, out-of-fold logits and per-fold figures."""

    c: float
    heads: list[Head]
    oof_logits: np.ndarray
    fold_accuracy: list[float] = field(default_factory=list)
    fold_loss: list[float] = field(default_factory=list)
    losses: dict[float, float] = field(default_factory=dict)  # mean fold loss per C

    def mean_head(self) -> Head:
        return Head(np.mean([h.kernel for h in self.heads], axis=0),
                    np.mean([h.bias for h in self.heads], axis=0))


def cross_validate(features: np.ndarray, y: np.ndarray, weights: np.ndarray,
                   folds: list[tuple[np.ndarray, np.ndarray]], n_classes: int,
                   grid: tuple[float, ...] = C_GRID) -> HeadCV:
    """Patient-grouped k-fold over ``grid``; the strength of least mean held-out loss."""
    best: HeadCV | None = None
    losses: dict[float, float] = {}
    for c in grid:
        oof = np.zeros((len(y), n_classes))
        heads, acc, loss = [], [], []
        for tr, te in folds:
            head = fit_head(features[tr], y[tr], weights[tr], c, n_classes)
            oof[te] = head.logits(features[te])
            heads.append(head)
            acc.append(float(np.mean(oof[te].argmax(1) == y[te])))
            loss.append(weighted_nll(oof[te], y[te], weights[te]))
        losses[c] = float(np.mean(loss))
        if best is None or losses[c] < float(np.mean(best.fold_loss)):
            best = HeadCV(c, heads, oof.astype(np.float32), acc, loss)
    assert best is not None
    best.losses = losses
    return best


def pca(features: np.ndarray, width: int = PCA_WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """``(mean (D,), basis (width, D))`` of the pooled features (whitened: unit variance)."""
    x = np.asarray(features, np.float64)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    scale = s[:width] / np.sqrt(max(len(x) - 1, 1))
    return mean, vt[:width] / np.maximum(scale, 1e-6)[:, None]


def build_frozen_ensemble(size: int, head: Head, pca_mean: np.ndarray,
                          pca_basis: np.ndarray, folds: int):
    """The served Keras graph: image -> [logits, cam, features, embedding] (see module)."""
    import keras
    from keras import layers

    from training.lite0 import Lite0Normalize
    from training.pretrained import build_backbone

    inp = keras.Input((size, size, 1), name="image")
    backbone = build_backbone(size)
    backbone.trainable = False
    fmap = backbone(Lite0Normalize(name="lite0_normalize")(inp), training=False)
    pooled = layers.GlobalAveragePooling2D(name="gap")(fmap)
    n_classes = head.kernel.shape[1]
    dense = layers.Dense(n_classes, name="head")
    logits = dense(pooled)
    dense.set_weights([head.kernel.astype(np.float32), head.bias.astype(np.float32)])
    # The CAM of class k: the head at every position (a 1x1 conv, bias left out).
    cam_layer = layers.Conv2D(n_classes, 1, use_bias=False, name="cam_head")
    cam = cam_layer(fmap)
    cam_layer.set_weights([head.kernel[None, None].astype(np.float32)])
    proj = layers.Dense(len(pca_basis), name="pca")
    projected = proj(pooled)
    proj.set_weights([pca_basis.T.astype(np.float32),
                      (-pca_mean @ pca_basis.T).astype(np.float32)])
    feats = projected if folds == 1 else layers.Concatenate(name="per_fold")([projected] * folds)
    return keras.Model(inp, [layers.Identity(name="logits")(logits),
                             layers.Identity(name="cam")(cam),
                             layers.Identity(name="features")(feats),
                             layers.Identity(name="embedding")(pooled)],
                       name="radio_frozen_lite0")


def train(fit_on, weights: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], size: int,
          cache: Path | None = None):
    """Cross-validated heads on the frozen features of ``fit_on`` (a Dataset) and the
    served graph: ``(CVResult for the pipeline, the Keras graph, the head CV)``."""
    from training.crossval import CVResult
    from training.fit import HParams

    feats = features_of(fit_on.images, cache)
    cv = cross_validate(feats, fit_on.y, weights, folds, len(fit_on.classes))
    mean, basis = pca(feats)
    graph = build_frozen_ensemble(size, cv.mean_head(), mean, basis, len(folds))
    result = CVResult(HParams(), [], cv.oof_logits, {}, cv.fold_accuracy, cv.fold_loss)
    return result, graph, cv


def log_head(cv: HeadCV) -> None:
    """The head's strength and its CV figures (the frozen recipe has no training curves)."""
    import mlflow

    mlflow.log_params({"backbone": "lite0-frozen", "head_C": cv.c})
    mlflow.log_metrics({"cv_accuracy_mean": float(np.mean(cv.fold_accuracy)),
                        "cv_accuracy_std": float(np.std(cv.fold_accuracy)),
                        "cv_loss_mean": float(np.mean(cv.fold_loss)),
                        "cv_loss_std": float(np.std(cv.fold_loss)),
                        **{f"cv_loss_C_{c}": v for c, v in cv.losses.items()}})
