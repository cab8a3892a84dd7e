"""serving/decision.py: the served decision rule and review flag."""

import numpy as np

from serving.decision import decide, needs_review, softmax

CLASSES = ["COVID", "Normal", "Viral Pneumonia"]


def test_threshold_overrides_argmax_only_for_covid():
    probs = np.array([[0.40, 0.45, 0.15], [0.20, 0.30, 0.50], [0.10, 0.80, 0.10]])
    assert list(decide(probs, CLASSES, None)) == [1, 2, 1]
    assert list(decide(probs, CLASSES, 0.35)) == [0, 2, 1]
    assert list(decide(probs, CLASSES, 0.05)) == [0, 0, 0]


def test_temperature_flattens_or_sharpens_without_changing_the_order():
    logits = np.array([[2.0, 1.0, 0.0]])
    plain, hot, cold = softmax(logits), softmax(logits, 2.0), softmax(logits, 0.5)
    assert np.allclose(plain.sum(), 1.0) and hot[0, 0] < plain[0, 0] < cold[0, 0]
    assert (np.argsort(hot) == np.argsort(cold)).all()


def test_review_flag_below_the_model_threshold_or_the_default():
    assert needs_review(0.59, None) and not needs_review(0.6, None)
    assert needs_review(0.7, 0.75) and not needs_review(0.8, 0.75)
