"""serving/schema.py: the one definition of the answer, and its validator."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from serving.schema import PREDICTION, RESPONSE, SchemaError, app_prediction, validate

GOOD = {
    "status": "ok", "label": "COVID",
    "probabilities": {"COVID": 0.9, "Normal": 0.06, "Viral Pneumonia": 0.04},
    "confidence": 0.9, "needs_review": False,
    "ood": {"score": 0.4, "threshold": 1.0, "reason": None},
    "heatmap": [[0.0, 0.5], [1.0, 0.25]], "model": {"name": "radio-cxr", "version": "2"},
}


def test_a_good_answer_validates():
    validate(GOOD, PREDICTION)
    validate({"predictions": [GOOD, GOOD]}, RESPONSE)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"status": "maybe"}, "prediction.status"),
        ({"probabilities": {"COVID": 1.5}}, "prediction.probabilities['COVID']"),
        ({"probabilities": {"COVID": "high"}}, "prediction.probabilities['COVID']"),
        ({"confidence": float("nan")}, "prediction.confidence"),
        ({"needs_review": "no"}, "prediction.needs_review"),
        ({"heatmap": []}, "prediction.heatmap"),
        ({"heatmap": [[2.0]]}, "prediction.heatmap[0][0]"),
        # rows take a fast path when every value is plain and in range; anything else
        # is still found and named
        ({"heatmap": [[0.5] * 28, [0.5] * 27 + [-0.01]]}, "prediction.heatmap[1][27]"),
        ({"heatmap": [[0.5, float("nan")]]}, "prediction.heatmap[0][1]"),
        ({"heatmap": [[0.5, float("inf")]]}, "prediction.heatmap[0][1]"),
        ({"heatmap": [[0.5, True]]}, "prediction.heatmap[0][1]"),
        ({"heatmap": [[0.5, "0.5"]]}, "prediction.heatmap[0][1]"),
        ({"heatmap": [[0.5, None]]}, "prediction.heatmap[0][1]"),
        ({"model": {"name": ""}}, "prediction.model"),
        ({"ood": "weird"}, "prediction.ood"),
        ({"label": 3}, "prediction.label"),
    ],
)
def test_each_breach_is_named(change, where):
    item = {**copy.deepcopy(GOOD), **change}
    with pytest.raises(SchemaError) as info:
        validate(item, PREDICTION, "prediction")
    assert str(info.value).startswith(where)


def test_numpy_and_integer_values_in_range_validate():
    validate({**GOOD, "heatmap": [[np.float64(0.5), 1, 0]]}, PREDICTION)


def test_missing_required_field_is_named():
    item = copy.deepcopy(GOOD)
    del item["needs_review"]
    with pytest.raises(SchemaError, match="needs_review is missing"):
        validate(item, PREDICTION)


def test_app_answer_shares_the_model_fields():
    app = app_prediction()
    for field in ("status", "label", "probabilities", "confidence", "needs_review", "heatmap"):
        assert app["properties"][field] == PREDICTION["properties"][field]
    assert {"id", "latency_ms"} <= set(app["required"])


def test_every_answer_of_the_shipped_model_validates(shipped_model):
    rng = np.random.default_rng(0)
    ramp = np.tile(np.linspace(20, 230, 224)[:, None], (1, 224))
    xray_like = np.clip(ramp + rng.normal(0, 25, (3, 224, 224)), 0, 255).astype(np.uint8)
    blank = np.zeros((1, 224, 224), np.uint8)  # refused: not an X-ray
    answers = shipped_model.predict_arrays(np.concatenate([xray_like, blank]), heatmap=True)
    answers += shipped_model.predict_arrays(xray_like[:1], heatmap=False)
    assert {a["status"] for a in answers} >= {"not_xray"}
    for answer in answers:
        validate(answer, PREDICTION)
