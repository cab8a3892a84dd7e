"""training/ood.py: image checks, feature and pixel distances calibrated on held-out folds."""

from __future__ import annotations

import numpy as np
import pytest

from training.ood import OODDetector, fit, image_stats


def chest_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """Smooth 224x224 images sharing one layout: two dark 'lungs' on a bright field."""
    yy, xx = np.mgrid[0:224, 0:224]
    out = []
    for _ in range(n):
        img = np.full((224, 224), 190.0)
        for cx in (70, 154):
            cx += rng.normal(0, 4)
            inside = ((xx - cx) / 45) ** 2 + ((yy - 110 - rng.normal(0, 4)) / 75) ** 2 < 1
            img[inside] = 60 + rng.normal(0, 8)
        img += rng.normal(0, 6, (224, 224))
        img = (img + np.roll(img, 1, 0) + np.roll(img, 1, 1) + np.roll(img, (1, 1), (0, 1))) / 4
        out.append(np.clip(img, 0, 255))
    return np.array(out, dtype=np.uint8)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    images = chest_like(rng, 60)
    features = rng.normal(0, 1, (60, 2 * 6))  # two folds' members, 6 features each
    idx = np.arange(60)
    folds = [(idx[idx % 2 == 0], idx[idx % 2 == 1]), (idx[idx % 2 == 1], idx[idx % 2 == 0])]
    return fit(features, images, folds), rng


def test_new_images_of_the_same_kind_pass(fitted):
    det, rng = fitted
    images = chest_like(rng, 20)
    results = det.check(images, rng.normal(0, 1, (20, 12)) * 0.8)
    assert sum(reason is None for _, reason in results) >= 18


def test_far_features_are_rejected_by_the_model_check(fitted):
    det, rng = fitted
    images = chest_like(rng, 1)
    ((score, reason),) = det.check(images, np.full((1, 12), 25.0))
    assert score > det.threshold and "to the model" in reason


def test_other_layouts_are_rejected_by_the_pixel_check(fitted):
    det, rng = fitted
    img = chest_like(rng, 1)[0].T[::-1].copy()  # lungs stacked vertically
    ((score, reason),) = det.check(img[None], np.zeros((1, 12)))
    assert score > det.threshold and "layout" in reason


@pytest.mark.parametrize(
    "image,words",
    [
        (np.full((224, 224), 128, np.uint8), "blank"),
        (np.random.default_rng(3).integers(0, 256, (224, 224), dtype=np.uint8), "noise"),
        (np.tile(np.linspace(0, 255, 224), (224, 1)).astype(np.uint8), "too smooth"),
    ],
)
def test_cheap_image_checks(fitted, image, words):
    det, _ = fitted
    ((_, reason),) = det.check(image[None], np.zeros((1, 12)))
    assert reason is not None and words in reason


def test_roundtrip_through_npz(fitted, tmp_path):
    det, rng = fitted
    det.save(tmp_path / "ood.npz")
    again = OODDetector.load(tmp_path / "ood.npz")
    images, feats = chest_like(rng, 3), rng.normal(0, 1, (3, 12))
    assert np.allclose(again.scores(images, feats), det.scores(images, feats))
    assert again.threshold == det.threshold


def test_roughness_orders_smooth_below_noise():
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (1, 224, 224), dtype=np.uint8)
    assert image_stats(noise)[0, 1] > image_stats(chest_like(rng, 1))[0, 1]
