"""serving/pyfunc.py: the pyfunc's answers, heatmaps and review flag."""

from __future__ import annotations

import numpy as np
import pandas as pd

from serving.heatmap import HEATMAP_SIZE, _resize_bilinear, heatmaps
from serving.wire import encode_image


def test_heatmap_is_the_chosen_class_scaled_to_unit_range():
    cam = np.zeros((2, 14, 14, 3), np.float32)
    cam[0, 3, 4, 1] = 5.0
    cam[0, :, :, 0] = 9.0  # another class: must not leak into class 1's map
    cam[1] = -1.0  # no positive evidence at all
    maps = heatmaps(cam, np.array([1, 2]))
    assert maps.shape == (2, HEATMAP_SIZE, HEATMAP_SIZE)
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    peak = np.unravel_index(np.argmax(maps[0]), maps[0].shape)
    assert abs(peak[0] - 3 * 2) <= 1 and abs(peak[1] - 4 * 2) <= 1
    assert not maps[1].any()


def test_bilinear_resize_keeps_constant_and_identity():
    x = np.random.default_rng(0).random((1, 14, 14))
    assert np.allclose(_resize_bilinear(x, 14), x)
    assert np.allclose(_resize_bilinear(np.full((1, 14, 14), 0.3), 28), 0.3)


def test_dataframe_request_equals_in_process_arrays(shipped_model, val_set):
    images = val_set.images[:3]
    frame = pd.DataFrame({"image": [encode_image(a) for a in images]})
    served = shipped_model.predict(None, frame, {"heatmap": True})
    direct = shipped_model.predict_arrays(images)
    assert [p["label"] for p in served] == [p["label"] for p in direct]
    assert all(
        p["probabilities"] == q["probabilities"] for p, q in zip(served, direct, strict=True)
    )
    no_maps = shipped_model.predict(None, frame, {"heatmap": False})
    assert all(p["heatmap"] is None for p in no_maps)


def test_answers_are_calibrated_probabilities_with_review_flag(shipped_model, val_set):
    preds = shipped_model.predict_arrays(val_set.images)
    below = shipped_model.meta["review_threshold"]
    for p in preds:
        # The rule that named the label travels with it, for the pages to say why.
        assert p["decision"] == {"covid_threshold": shipped_model.meta["covid_threshold"],
                                 "review_threshold": below}
        assert abs(sum(p["probabilities"].values()) - 1.0) < 1e-4
        assert p["model"]["name"] == "radio-cxr"
        if p["status"] == "ok":
            assert p["confidence"] == p["probabilities"][p["label"]]
            low = any(r.startswith("Low confidence") for r in p["review_reasons"])
            assert low == (p["confidence"] < below)
            # the flag is raised exactly when there is a reason to give the clinician
            assert p["needs_review"] == bool(p["review_reasons"])
    assert any(p["needs_review"] for p in preds) or min(p["confidence"] for p in preds) >= below


def test_heat_is_on_the_thorax_not_the_border(shipped_model, val_set):
    preds = shipped_model.predict_arrays(val_set.images)
    maps = np.array([p["heatmap"] for p in preds])
    assert maps.shape == (len(preds), HEATMAP_SIZE, HEATMAP_SIZE)
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    band = HEATMAP_SIZE // 14  # outer 1/14 on each side: collimator edges, markers, text
    inner = np.zeros((HEATMAP_SIZE, HEATMAP_SIZE), bool)
    inner[band:-band, band:-band] = True
    centre_heat, border_heat = maps[:, inner].mean(axis=1), maps[:, ~inner].mean(axis=1)
    assert centre_heat.mean() > border_heat.mean()
    assert np.mean(centre_heat > border_heat) >= 0.75  # measured 0.85 for version 1
