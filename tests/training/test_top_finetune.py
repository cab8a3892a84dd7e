"""training/top_finetune.py: the cut backbone's cache, the ImageNet top, the fine-tuning loop."""

from __future__ import annotations

import numpy as np
import pytest

from training.frozen import Head, weighted_nll
from training.pretrained import imagenet_features
from training.top_finetune import (
    TopHParams,
    activations_of,
    build_top,
    fine_tune,
    frozen_pooled,
    predict,
    set_head,
)


def _films(n: int, seed: int = 0, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    films = rng.integers(0, 120, (n, size, size)).astype(np.uint8)
    films[: n // 2, 16:48, 16:48] += 120  # half of them bright-centred
    return films


def test_cut_top_reproduces_the_frozen_backbone_and_the_cache_is_per_film(tmp_path):
    films = _films(4)
    maps = activations_of(films, tmp_path)
    # 64 px: the last stage's input is 64/32 = 2 positions a side, 192 channels
    assert maps.shape == (4, 2, 2, 192) and maps.dtype == np.float32
    assert len(list((tmp_path / "block15").glob("*.npy"))) == 4
    # bottom (cached) + untrained ImageNet top == the whole frozen backbone, pooled
    pooled = frozen_pooled(maps)
    assert pooled.shape == (4, 1280)
    np.testing.assert_allclose(pooled, imagenet_features(films), atol=1e-4)
    # a second call reads the cache: same maps, no new file (a repeated film: one file)
    again = activations_of(np.concatenate([films, films[:1]]), tmp_path)
    np.testing.assert_array_equal(again[:4], maps)
    np.testing.assert_array_equal(again[4], maps[0])
    assert len(list((tmp_path / "block15").glob("*.npy"))) == 4


def test_non_square_films_are_refused():
    with pytest.raises(ValueError, match="square"):
        activations_of(np.zeros((2, 64, 32), np.uint8))


def test_the_dense_head_starts_as_the_given_linear_head():
    top = build_top((2, 2, 192), 3)
    maps = np.abs(np.random.default_rng(1).normal(size=(5, 2, 2, 192))).astype(np.float32)
    logits, pooled = predict(top, maps)
    assert logits.shape == (5, 3) and not logits.any()  # zero until a head is set
    rng = np.random.default_rng(2)
    head = Head(rng.normal(size=(1280, 3)) * 0.01, np.array([0.5, -1.0, 2.0]))
    set_head(top, head)
    np.testing.assert_allclose(predict(top, maps)[0], head.logits(pooled), atol=1e-4)


def _task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Maps whose class is written in a few channels (plus noise): a learnable signal."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    maps = np.abs(rng.normal(size=(n, 2, 2, 192))).astype(np.float32)
    for k in range(3):
        maps[y == k, :, :, 10 * k: 10 * k + 10] += 1.5
    return maps, y


def test_fine_tuning_keeps_the_weights_of_least_stop_loss_and_imagenet_batchnorm():
    maps, y = _task(60, 3)
    stop_maps, stop_y = _task(30, 4)
    weights = np.where(y == 0, 2.0, 0.5).astype(np.float32)  # class-weighted fit
    stop_w = np.ones(len(stop_y), np.float32)
    fold_of = np.arange(len(y)) % 3
    folds = [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(3)]
    res = fine_tune(maps, y, weights, folds, stop_maps, stop_y, stop_w, 3,
                    TopHParams(learning_rate=1e-3, epochs=3, patience=3, batch_size=16), seed=0)
    # epoch 0 is the linear probe on the frozen features, scored like every epoch
    probe_logits = res.probe.logits(frozen_pooled(stop_maps))
    assert res.stop_loss[0] == pytest.approx(weighted_nll(probe_logits, stop_y, stop_w), rel=1e-4)
    assert len(res.stop_loss) == 4  # the probe + 3 epochs (patience never ran out)
    assert res.best_epoch == int(np.argmin(res.stop_loss))
    # the returned top is the best epoch's, not the last one's
    logits, _ = predict(res.top, stop_maps)
    assert weighted_nll(logits, stop_y, stop_w) == pytest.approx(min(res.stop_loss), rel=1e-4)
    assert res.seconds_per_epoch > 0
    # BatchNorm kept ImageNet's moving statistics (inference mode throughout)
    fresh = build_top((2, 2, 192), 3)
    for name in ("blocks_15_bn0", "bn1"):
        trained = res.top.get_layer(name).get_weights()
        imagenet = fresh.get_layer(name).get_weights()
        for a, b in zip(trained, imagenet, strict=True):
            np.testing.assert_array_equal(a, b)
    # ... while the convolutions moved (unless the probe itself was the best)
    moved = not np.array_equal(res.top.get_layer("conv_head").get_weights()[0],
                               fresh.get_layer("conv_head").get_weights()[0])
    assert moved == (res.best_epoch > 0)
