"""training/ood.py: image checks and the Mahalanobis distance."""

import numpy as np

from training.ood import OODDetector, fit, image_stats


def test_distance_grows_away_from_training_features(tmp_path):
    rng = np.random.default_rng(0)
    feats = rng.normal(0, 1, (300, 8))
    images = rng.normal(120, 30, (300, 32, 32)).clip(0, 255).astype(np.uint8)
    images = np.repeat(np.repeat(images[:, ::4, ::4], 4, 1), 4, 2)  # smooth, X-ray-like stats
    det = fit(feats, images)
    near, far = det.distance(np.zeros((1, 8)))[0], det.distance(np.full((1, 8), 10.0))[0]
    assert near < det.threshold < far
    det.save(tmp_path / "ood.npz")
    again = OODDetector.load(tmp_path / "ood.npz")
    assert np.allclose(again.distance(feats[:5]), det.distance(feats[:5]))
    ok, far_reason = again.check(images[:2], np.stack([np.zeros(8), np.full(8, 10.0)]))
    assert ok[1] is None and "frontal chest X-ray" in far_reason[1]


def test_blank_and_noise_images_are_caught_before_the_distance():
    rng = np.random.default_rng(1)
    smooth = np.repeat(np.repeat(rng.integers(0, 255, (50, 8, 8)), 28, 1), 28, 2).astype(np.uint8)
    det = fit(rng.normal(0, 1, (50, 4)), smooth)
    blank = np.full((1, 224, 224), 128, np.uint8)
    noise = rng.integers(0, 256, (1, 224, 224), dtype=np.uint8)
    assert "blank" in det.check(blank, np.zeros((1, 4)))[0][1]
    assert "noise" in det.check(noise, np.zeros((1, 4)))[0][1]
    assert image_stats(noise)[0, 1] > image_stats(smooth[:1])[0, 1]
