"""training/lungs.py: the segmenter learns, exports to ONNX and is served with the model
(synthetic 'films' whose lungs are two dark ellipses: seconds, no data)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from PIL import Image

from serving.lungs import SEG_SIZE, LungSegmenter
from training import lungs
from training.model import build_member
from training.packaging import ARTIFACT_FILES, LUNGS_FILE, artifact_files, load_served, package


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bright films with two dark 'lungs' at random places: (images 0-255, masks 0/1)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SEG_SIZE, :SEG_SIZE] / SEG_SIZE
    x = np.empty((n, SEG_SIZE, SEG_SIZE, 1), np.float32)
    y = np.empty_like(x)
    for i in range(n):
        cy, cx = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)
        m = (((yy - cy) / 0.25) ** 2 + ((xx - cx + 0.17) / 0.12) ** 2 < 1) | (
            ((yy - cy) / 0.25) ** 2 + ((xx - cx - 0.17) / 0.12) ** 2 < 1)
        x[i, ..., 0] = np.where(m, 60, 190) + rng.normal(0, 10, m.shape)
        y[i, ..., 0] = m
    return np.clip(x, 0, 255), y


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    x, y = synthetic(48, 0)
    # Enough steps for BatchNorm's moving statistics (momentum 0.99) to settle.
    model = lungs.train({"synthetic": (x, y)}, epochs=30, seed=0, batch_size=4)
    path = lungs.export(model, tmp_path_factory.mktemp("seg") / "lungs.onnx")
    return model, path


def test_dice_counts_overlap():
    a = np.zeros((2, 4, 4), bool)
    a[:, :2] = True
    b = a.copy()
    b[1] = ~a[1]
    assert lungs.dice(a, b).tolist() == [1.0, 0.0]


def test_segmenter_learns_the_lungs_and_onnx_agrees(segmenter):
    model, path = segmenter
    x, y = synthetic(12, 1)
    report = lungs.evaluate(model, {"held-out": (x, y)})["held-out"]
    assert report["n"] == 12 and report["dice_mean"] > 0.8
    seg = LungSegmenter(str(path))
    films = x[..., 0].astype(np.uint8)
    masks = seg.masks(films)
    assert masks.shape == (12, SEG_SIZE, SEG_SIZE) and masks.dtype == bool
    keras_masks = model.predict(x, verbose=0)[..., 0] > 0.5
    assert np.mean(masks == keras_masks) > 0.99


def test_load_split_reads_image_mask_pairs(tmp_path):
    x, y = synthetic(3, 2)
    for split in ("train", "val"):
        for i in range(3):
            for kind, arr in (("images", x[i, ..., 0]), ("masks", 255 * y[i, ..., 0])):
                out = tmp_path / "set" / split / kind / f"{i}.png"
                out.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr.astype(np.uint8)).save(out)
    (tmp_path / "set" / "train" / "images" / "orphan.png").write_bytes(b"")  # no mask: skipped
    data = lungs.load_split(tmp_path, "train")
    images, masks = data["set"]
    assert images.shape == (3, SEG_SIZE, SEG_SIZE, 1) and set(np.unique(masks)) <= {0.0, 1.0}
    assert np.mean((masks[..., 0] > 0.5) == (y[:, ..., 0] > 0.5)) > 0.97


def test_a_lung_crop_model_ships_and_uses_its_segmenter(segmenter, tmp_path):
    _, path = segmenter
    x, _ = synthetic(16, 3)
    films = x[..., 0].astype(np.uint8)
    crops = LungSegmenter(str(path)).crop(films)[0]
    labels = np.arange(16) % 2
    idx = np.arange(16)
    folds = [(idx[idx % 2 == 0], idx[idx % 2 == 1]), (idx[idx % 2 == 1], idx[idx % 2 == 0])]
    keras.utils.set_random_seed(0)
    pkg = package(
        [build_member(2, SEG_SIZE, name=f"fold{i}") for i in range(2)],
        np.eye(2)[labels] * 2.0, labels, ["COVID", "Normal"], crops, crops[:4], folds,
        tmp_path / "model", name="radio-test", size=SEG_SIZE, review_threshold=0.6,
        dataset_version="v", lungs=path,
    )
    assert artifact_files(pkg.model_dir) == {**ARTIFACT_FILES, "lungs": LUNGS_FILE}
    assert json.loads((pkg.model_dir / "meta.json").read_text())["lungs"] is True
    served = load_served(pkg.model_dir)
    seen, boxes = served.view(films)
    assert np.array_equal(seen, crops) and len(boxes) == 16
    answers = served.predict_arrays(films[:2], heatmap=True)
    heat = np.array(answers[0]["heatmap"])
    top, left, bottom, right = boxes[0]
    h, w = heat.shape
    # The heatmap is on the whole film: nothing outside the lung box.
    assert heat[: int(top * h) - 1].sum() == 0 and heat[int(np.ceil(bottom * h)) + 1 :].sum() == 0
