"""The shipped model on the val splits (used once, at training; re-measured here):
the acceptance figures of the model card, per source, beside the pixel baseline."""

from __future__ import annotations

import pytest

from training import baseline, data, sampling
from training.metrics import report_by_source, softmax


@pytest.fixture(scope="module")
def reports(shipped_model, val_set, real_sources):
    classes = shipped_model.classes
    out = shipped_model.run(val_set.images)
    probs = softmax(out["logits"], shipped_model.meta["temperature"])
    cnn = report_by_source(
        probs, val_set.y, val_set.sources, classes, shipped_model.meta["covid_threshold"]
    )
    train = data.load(real_sources, "train", classes=classes)
    weights = sampling.balanced_weights(train)
    folds = sampling.patient_folds(train, 5, 42)
    c = baseline.choose_c(train.images, train.y, weights, folds, len(classes))
    base_probs = baseline.predict_proba(
        baseline.fit(train.images, train.y, weights, c), val_set.images, len(classes)
    )
    return cnn, report_by_source(base_probs, val_set.y, val_set.sources, classes, None)


def test_union_accuracy_beats_the_pixel_baseline(reports):
    cnn, base = reports
    assert cnn["union"]["n"] == 124
    assert cnn["union"]["accuracy"] >= 0.85
    assert cnn["union"]["accuracy"] > base["union"]["accuracy"]


def test_covid_recall_overall_and_per_source(reports):
    cnn, _ = reports
    assert cnn["union"]["covid_recall"] >= 0.85
    for source in ("covid19-3class", "hannover-covid"):
        assert cnn[source]["covid_recall"] >= 0.80, source


def test_adult_normals_are_not_called_covid(reports):
    cnn, _ = reports
    assert cnn["nih-adult-normal"]["non_covid_called_covid"] <= 0.10


def test_temperature_scaling_lowers_val_calibration_error(shipped_model, val_set):
    from training.calibration import ece

    logits = shipped_model.run(val_set.images)["logits"]
    before = ece(softmax(logits), val_set.y)
    after = ece(softmax(logits, shipped_model.meta["temperature"]), val_set.y)
    assert after < before
