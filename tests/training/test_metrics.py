"""training/metrics.py: threshold choice, per-source report."""

import numpy as np

from serving.decision import softmax
from training.metrics import choose_covid_threshold, report_by_source

CLASSES = ["COVID", "Normal", "Viral Pneumonia"]


def test_threshold_choice_recovers_separable_cut():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 50)
    p_covid = np.where(y == 0, rng.uniform(0.3, 0.4, 150), rng.uniform(0.0, 0.25, 150))
    rest = (1 - p_covid) / 2
    probs = np.stack(
        [p_covid, rest + np.where(y == 1, 0.01, -0.01), rest - np.where(y == 1, 0.01, -0.01)], 1
    )
    t = choose_covid_threshold(probs, y, CLASSES)
    assert 0.25 <= t <= 0.30


def test_report_by_source_counts_adult_normals_called_covid():
    probs = softmax(np.array([[3.0, 0, 0], [3.0, 0, 0], [0, 3.0, 0], [0, 3.0, 0], [3.0, 0, 0]]))
    y = np.array([0, 1, 1, 1, 0])
    sources = np.array(["a", "nih", "nih", "nih", "h"])
    rep = report_by_source(probs, y, sources, CLASSES, None)
    assert rep["nih"]["non_covid_called_covid"] == 1 / 3
    assert rep["union"]["covid_recall"] == 1.0
    assert rep["union"]["accuracy"] == 4 / 5
    assert "macro_auc" in rep["union"] and "macro_auc" not in rep["h"]
