"""training/frozen_loso.py and training/familiarity.py on synthetic features: a held-out
source unlike the others is flagged unfamiliar; unseen patients of known ones rarely."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training import familiarity
from training.data import Dataset, Sample
from training.frozen_loso import CLASSES, held_out, one_source


def _dataset(source: str, labels: list[str], start: int) -> Dataset:
    samples = [Sample(Path(f"{source}/{i}.png"), source, "train", lab, f"p{start + i}")
               for i, lab in enumerate(labels)]
    return Dataset(samples, np.zeros((len(samples), 4, 4), np.uint8), CLASSES)


def _features(labels: list[str], rng, offset: np.ndarray) -> np.ndarray:
    centre = {c: np.eye(8)[i] * 4 for i, c in enumerate(CLASSES)}
    return np.array([centre[lab] for lab in labels]) + offset + rng.normal(size=(len(labels), 8))


def test_a_source_unlike_the_training_ones_is_flagged_and_seen_patients_rarely():
    rng = np.random.default_rng(0)
    labels = [c for c in CLASSES for _ in range(40)]
    train = _dataset("seen", labels, 0)
    ftrain = _features(labels, rng, np.zeros(8))
    far = np.zeros(8)
    far[6] = 12.0  # another hospital: the same classes, shifted along a new direction
    test_labels = ["Normal"] * 30
    test = _dataset("new", test_labels, 1000)
    res = one_source(train, ftrain, test, _features(test_labels, rng, far), seed=42)
    assert res["unfamiliar"] == 1.0
    assert res["seen_unfamiliar"] <= 0.25  # the calibration fifth: target 10%, 32 films
    assert res["all"]["n"] == 30 and res["all"]["covid_recall"] is None
    # and films of a known source are answered as it was: normal adults stay Normal
    same = one_source(train, ftrain, test, _features(test_labels, rng, np.zeros(8)), seed=42)
    assert same["all"]["called_covid"] == 0.0 and same["unfamiliar"] <= 0.3


def test_leave_patient_out_threshold_flags_about_the_target_share_of_unseen_patients():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 16))
    x[1::2] = x[::2] + 0.01 * rng.normal(size=(200, 16))  # two films per patient
    groups = np.repeat(np.arange(200), 2)
    fam = familiarity.fit_leave_patient_out(x, groups, k=5, target=0.10)
    fresh = rng.normal(size=(2000, 16))  # new patients, same population
    assert 0.06 <= fam.unfamiliar(fresh).mean() <= 0.14
    # a patient's second film is no neighbour of its first: else every film looked familiar
    assert fam.threshold > 0.3
    assert fam.unfamiliar(rng.normal(size=(200, 16)) + 6.0).mean() == 1.0
    assert fam.reference.shape == (400, 16) and fam.k == 5


def test_held_out_is_every_image_of_the_source_train_then_val():
    train = Dataset([*_dataset("a", ["Normal"] * 2, 0).samples,
                     *_dataset("b", ["COVID"] * 2, 10).samples],
                    np.arange(4 * 16, dtype=np.uint8).reshape(4, 4, 4), CLASSES)
    val = Dataset([*_dataset("b", ["COVID"], 20).samples, *_dataset("a", ["Normal"], 30).samples],
                  np.full((2, 4, 4), 200, np.uint8), CLASSES)
    keep, index, test = held_out(train, val, "b")
    assert keep.tolist() == [True, True, False, False]
    assert index.tolist() == [2, 3, 4]  # train images 2, 3, then val image 0 (after the 4)
    assert [s.patient for s in test.samples] == ["p10", "p11", "p20"]
    assert test.images[0, 0, 0] == 32 and test.images[2, 0, 0] == 200
