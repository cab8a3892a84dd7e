"""training/packaging.py, the packaging stage: calibration from out-of-fold logits and the
model folder the server loads (untrained 32x32 members: seconds, no data)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from serving.decision import softmax
from serving.ood import OODDetector
from training.model import build_member
from training.packaging import ARTIFACT_FILES, calibrate, load_served, package

SIZE = 32
CLASSES = ["COVID", "Normal"]


def logits_for(y: np.ndarray, sharpness: float, seed: int = 0) -> np.ndarray:
    """Logits right 80% of the time, with confidence scaled by ``sharpness``."""
    rng = np.random.default_rng(seed)
    guess = np.where(rng.random(len(y)) < 0.8, y, 1 - y)
    return sharpness * np.eye(2)[guess] + rng.normal(0, 0.1, (len(y), 2))


def test_overconfident_logits_get_a_temperature_above_one():
    y = np.arange(400) % 2
    t_sharp, _ = calibrate(logits_for(y, 8.0), y, CLASSES)
    t_soft, _ = calibrate(logits_for(y, 0.3), y, CLASSES)
    assert t_sharp > 1.5 and t_soft < 1.0


def test_covid_threshold_only_when_there_is_a_covid_class():
    y = np.arange(100) % 2
    _, threshold = calibrate(logits_for(y, 2.0), y, CLASSES)
    assert 0.1 <= threshold <= 0.9
    assert calibrate(logits_for(y, 2.0), y, ["Normal", "Pneumonia"])[1] is None


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 120, (48, SIZE, SIZE)).astype(np.uint8)
    y = np.arange(48) % 2
    images[y == 0, 8:24, 8:24] += 100
    idx = np.arange(48)
    # equal folds: the pixel check's PCA basis has one shape per fold
    folds = [(idx[idx % 4 < 2], idx[idx % 4 >= 2]), (idx[idx % 4 >= 2], idx[idx % 4 < 2])]
    keras.utils.set_random_seed(0)
    members = [build_member(2, SIZE, name=f"fold{i}") for i in range(2)]
    model_dir = tmp_path_factory.mktemp("pkg") / "model"
    pkg = package(
        members,
        logits_for(y, 3.0),
        y,
        CLASSES,
        images,
        images[:8],
        folds,
        model_dir,
        name="radio-test",
        size=SIZE,
        review_threshold=0.7,
        dataset_version="abc123",
    )
    return pkg, images, y


def test_model_folder_holds_every_artefact_the_server_loads(packaged):
    pkg, _, _ = packaged
    assert sorted(p.name for p in pkg.model_dir.iterdir()) == sorted(ARTIFACT_FILES.values())
    meta = json.loads((pkg.model_dir / "meta.json").read_text())
    assert meta == pkg.meta
    assert meta["classes"] == CLASSES and meta["image_size"] == SIZE and meta["members"] == 2
    assert (meta["name"], meta["review_threshold"], meta["dataset_version"]) == (
        "radio-test",
        0.7,
        "abc123",
    )


def test_meta_carries_the_out_of_fold_calibration(packaged):
    pkg, _, y = packaged
    assert (pkg.temperature, pkg.threshold) == calibrate(logits_for(y, 3.0), y, CLASSES)


def test_onnx_copy_agrees_with_keras(packaged):
    pkg, _, _ = packaged
    assert set(pkg.onnx_diff) == {"logits", "features", "cam_relative"}
    assert max(pkg.onnx_diff.values()) < 1e-4


def test_ood_detector_has_one_feature_check_per_member(packaged):
    pkg, _, _ = packaged
    det = OODDetector.load(pkg.model_dir / "ood.npz")
    assert det.feat_mean.shape == (2, 128) and det.pix_basis.shape[0] == 2


def test_served_model_answers_with_the_packaged_temperature(packaged):
    pkg, images, _ = packaged
    served = load_served(pkg.model_dir)
    answers = served.predict_arrays(images[:4], heatmap=False)
    probs = softmax(served.run(images[:4])["logits"], pkg.temperature)
    for answer, p in zip(answers, probs, strict=True):
        assert [answer["probabilities"][c] for c in CLASSES] == pytest.approx(p, abs=1e-5)
        assert answer["status"] in ("ok", "not_xray") and answer["heatmap"] is None


def test_real_negatives_give_the_gate_its_fourth_check(packaged, tmp_path):
    from training.chest_gate import Negatives

    pkg, images, y = packaged
    rng = np.random.default_rng(5)
    others = rng.integers(0, 255, (30, SIZE, SIZE)).astype(np.uint8)  # unlike the train films
    keras.utils.set_random_seed(0)
    idx = np.arange(48)
    folds = [(idx[idx % 4 < 2], idx[idx % 4 >= 2]), (idx[idx % 4 >= 2], idx[idx % 4 < 2])]
    with_negs = package(
        [build_member(2, SIZE, name=f"fold{i}") for i in range(2)], logits_for(y, 3.0), y,
        CLASSES, images, images[:8], folds, tmp_path / "model", name="radio-test", size=SIZE,
        review_threshold=0.7, dataset_version="abc123",
        negatives=Negatives(others, np.array(["noise"] * 30), np.arange(30).astype(str)),
        train_groups=np.array([f"p{i}" for i in range(48)]),
    )
    det = OODDetector.load(with_negs.model_dir / "ood.npz")
    assert det.neg_coef is not None and det.neg_threshold == with_negs.meta["gate"]["threshold"]
    assert with_negs.meta["gate"]["n_negatives"] == 30
    assert OODDetector.load(pkg.model_dir / "ood.npz").neg_coef is None  # without: 3 checks
