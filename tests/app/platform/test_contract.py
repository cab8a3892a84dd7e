"""app/platform/contract.py: the model server's answer is checked before anyone sees it."""

import copy

import pytest

from app.platform.contract import parse_response
from app.platform.errors import describe
from app.platform.model_client import ModelServerError

GOOD = {
    "status": "ok", "label": "COVID",
    "probabilities": {"COVID": 0.9, "Normal": 0.06, "Viral Pneumonia": 0.04},
    "confidence": 0.9, "needs_review": False,
    "ood": {"score": 12.3, "threshold": 40.0, "reason": None},
    "heatmap": [[0.0, 0.5], [1.0, 0.25]], "model": {"name": "radio-cxr", "version": "1"},
}


def _answer(**changes):
    item = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is KeyError:
            del item[key]
        else:
            item[key] = value
    return {"predictions": [item]}


def test_good_answer_is_normalised():
    parsed = parse_response(_answer(model={"name": "radio-cxr", "version": 3}))
    assert parsed["label"] == "COVID"
    assert parsed["probabilities"]["Normal"] == 0.06
    assert parsed["heatmap"] == [[0.0, 0.5], [1.0, 0.25]]
    assert parsed["model"] == {"name": "radio-cxr", "version": "3"}
    assert parsed["ood_reason"] is None
    assert parsed["ood_score"] == 12.3


def test_not_xray_drops_the_diagnosis():
    parsed = parse_response(_answer(status="not_xray", label=None, needs_review=True,
                                    ood={"score": 80.0, "threshold": 40.0, "reason": "no lungs"}))
    assert parsed["status"] == "not_xray"
    assert parsed["label"] is None and parsed["probabilities"] is None
    assert parsed["heatmap"] is None and parsed["confidence"] is None
    assert parsed["ood_reason"] == "no lungs"


def test_missing_heatmap_is_allowed():
    assert parse_response(_answer(heatmap=None))["heatmap"] is None


@pytest.mark.parametrize(
    "body",
    [
        None, [], {"predictions": []}, {"predictions": "x"}, {"result": []},
        {"predictions": [GOOD, GOOD]},
        _answer(status="maybe"), _answer(label="Cancer"), _answer(label=KeyError),
        _answer(probabilities={"COVID": 0.9, "Normal": 0.9}),
        _answer(probabilities={"COVID": 1.5, "Normal": -0.5}),
        _answer(probabilities={"COVID": "high"}), _answer(probabilities=KeyError),
        _answer(confidence=float("nan")), _answer(confidence=True),
        _answer(needs_review="no"), _answer(needs_review=KeyError),
        _answer(heatmap=[[0.1, 0.2], [0.3]]), _answer(heatmap=[[2.0]]), _answer(heatmap=[]),
        _answer(heatmap="img"), _answer(model={"name": "radio-cxr"}), _answer(model=KeyError),
        _answer(ood="weird"),
    ],
)
def test_malformed_answers_are_502(body):
    with pytest.raises(ModelServerError) as info:
        parse_response(body)
    assert describe(info.value)[0] == 502
    assert "cannot use" in info.value.message


def test_decision_thresholds_pass_through_and_the_answer_is_stated_in_words():
    parsed = parse_response(_answer(label="COVID", probabilities={
        "COVID": 0.3, "Viral Pneumonia": 0.1, "Other Abnormal": 0.1, "Normal": 0.5},
        confidence=0.3, decision={"covid_threshold": 0.24, "review_threshold": 0.6}))
    assert parsed["decision"] == {"covid_threshold": 0.24, "review_threshold": 0.6}
    assert parsed["explanation"]["headline"] == "COVID \u2014 30.0%"
    assert "above the COVID threshold of 24%" in parsed["explanation"]["why"]
    # A model packaged before the field: the thresholds are unknown, the answer still stated.
    parsed = parse_response(_answer())
    assert parsed["decision"] == {"covid_threshold": None, "review_threshold": None}
    assert parsed["explanation"]["headline"] == "COVID \u2014 90.0%"
    with pytest.raises(ModelServerError):
        parse_response(_answer(decision={"covid_threshold": 1.5}))
