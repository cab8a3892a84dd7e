"""training/chest_gate.py: check 4 of the gate, fitted against real negatives."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_ood import chest_like

from serving.ood import OODDetector, negative_inputs
from training import chest_gate as gate
from training.ood import fit


def side_view(rng: np.random.Generator, n: int) -> np.ndarray:
    """One dark field off-centre: the layout of a lateral film, not of a frontal one."""
    yy, xx = np.mgrid[0:224, 0:224]
    out = []
    for _ in range(n):
        img = np.full((224, 224), 190.0)
        inside = ((xx - 120 - rng.normal(0, 4)) / 60) ** 2 + ((yy - 110) / 80) ** 2 < 1
        img[inside] = 70 + rng.normal(0, 8)
        img += rng.normal(0, 6, (224, 224))
        # the same smoothing as chest_like: the image statistics must not tell them apart
        img = (img + np.roll(img, 1, 0) + np.roll(img, 1, 1) + np.roll(img, (1, 1), (0, 1))) / 4
        out.append(np.clip(img, 0, 255))
    return np.array(out, dtype=np.uint8)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(1)
    chest, lateral = chest_like(rng, 80), side_view(rng, 60)
    feats = rng.normal(0, 1, (140, 12))  # uninformative features: the layout must decide
    x = negative_inputs(np.concatenate([chest, lateral]), feats)
    check = gate.fit_negative_check(
        x[:80], np.array([f"p{i // 2}" for i in range(80)]),
        x[80:], np.array([f"g{i // 3}" for i in range(60)]),
    )
    idx = np.arange(80)
    folds = [(idx[idx % 2 == 0], idx[idx % 2 == 1]), (idx[idx % 2 == 1], idx[idx % 2 == 0])]
    return check, fit(rng.normal(0, 1, (80, 12)), chest, folds), rng


def test_threshold_keeps_almost_every_chest_film_out_of_fold(fitted):
    check, _, _ = fitted
    assert check.threshold >= 0.5 and check.c in gate.C_GRID
    assert check.oof_chest_refused <= 0.02
    assert check.oof_negatives_caught >= 0.9


def test_attached_check_refuses_new_lateral_views_and_keeps_new_frontal_ones(fitted, tmp_path):
    check, detector, rng = fitted
    gate.attach(detector, check).save(tmp_path / "ood.npz")
    loaded = OODDetector.load(tmp_path / "ood.npz")
    assert loaded.neg_threshold == pytest.approx(check.threshold)
    lateral, chest = side_view(rng, 10), chest_like(rng, 10)
    feats = rng.normal(0, 1, (10, 12)) * 0.8
    refused = [reason for _, reason in loaded.check(lateral, feats)]
    assert sum("another kind of radiograph" in (r or "") for r in refused) >= 9
    assert np.mean(loaded.not_chest_probability(chest, feats) > loaded.neg_threshold) <= 0.1


def test_detectors_saved_without_check_4_still_load_and_never_use_it(fitted, tmp_path):
    _, _, rng = fitted
    images = chest_like(rng, 20)
    folds = [(np.arange(0, 20, 2), np.arange(1, 20, 2)), (np.arange(1, 20, 2), np.arange(0, 20, 2))]
    fit(rng.normal(0, 1, (20, 12)), images, folds).save(tmp_path / "old.npz")
    assert "neg_coef" not in np.load(tmp_path / "old.npz").files
    old = OODDetector.load(tmp_path / "old.npz")
    assert old.neg_coef is None
    assert not old.not_chest_probability(images[:3], rng.normal(0, 1, (3, 12))).any()


def test_negatives_are_read_with_kind_and_group(tmp_path):
    for kind, n in (("hand_xray", 2), ("ct_slice", 1)):
        for i in range(n):
            path = tmp_path / "train" / kind / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = np.random.default_rng(i).integers(0, 255, (64, 64), np.uint8)
            Image.fromarray(pixels).save(path)
    (tmp_path / "train" / "hand_xray" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    (tmp_path / "metadata.csv").write_text("file,group\ntrain/hand_xray/0.png,pt1\n")
    negs = gate.load_negatives(tmp_path, "train")
    assert sorted(negs.kinds.tolist()) == ["ct_slice", "hand_xray", "hand_xray"]
    assert "hand_xray:pt1" in negs.groups and negs.images.shape[1:] == (224, 224)
