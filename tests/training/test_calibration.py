"""training/calibration.py: temperature scaling and ECE."""

import numpy as np

from serving.decision import softmax
from training.calibration import ece, fit_temperature


def test_temperature_undoes_known_overconfidence():
    rng = np.random.default_rng(0)
    n, k = 4000, 3
    true_logits = rng.normal(0, 1.5, (n, k))
    y = np.array([rng.choice(k, p=p) for p in softmax(true_logits)])
    overconfident = true_logits * 3.0
    t = fit_temperature(overconfident, y)
    assert 2.5 < t < 3.5
    assert ece(softmax(overconfident, t), y) < ece(softmax(overconfident), y)


def test_ece_is_zero_when_confidence_equals_accuracy():
    probs = np.tile([1.0, 0.0], (10, 1))
    assert ece(probs, np.zeros(10, int)) == 0.0
    assert np.isclose(ece(probs, np.array([0] * 5 + [1] * 5)), 0.5)
