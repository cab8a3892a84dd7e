"""training/validation.py, the evaluation stage: val through the served path (a stub pyfunc
here), calibration errors, the pixel baseline and the figures, on tiny sources."""

from __future__ import annotations

import numpy as np
import pytest

from serving.decision import softmax
from training import plots
from training.prepare import prepare
from training.validation import calibration_errors, evaluate

SIZE = 32


class StubServed:
    """Answers like the pyfunc: the bright-centred films are COVID; one film is refused."""

    classes = ["COVID", "Normal"]

    def __init__(self, refuse: np.ndarray):
        self.refuse = refuse

    def view(self, images: np.ndarray) -> tuple[np.ndarray, None]:
        return images, None  # a whole-film model: no lung crop

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        bright = images[:, 12:20, 12:20].mean(axis=(1, 2)) > 120
        return {"logits": np.where(bright[:, None], [[2.0, -2.0]], [[-2.0, 2.0]])}

    def predict_arrays(self, images: np.ndarray, heatmap: bool = True) -> list[dict]:
        assert not heatmap  # an evaluation needs no heatmaps
        probs = softmax(self.run(images)["logits"])
        out = []
        for img, p in zip(images, probs, strict=True):
            refused = np.array_equal(img, self.refuse)
            out.append(
                {
                    "status": "not_xray" if refused else "ok",
                    "label": None if refused else self.classes[int(np.argmax(p))],
                    "probabilities": dict(zip(self.classes, p.tolist(), strict=True)),
                    "needs_review": False,
                }
            )
        return out


@pytest.fixture
def evaluated(toy_sources, tmp_path, monkeypatch):
    d = prepare(toy_sources, SIZE, None, "weights", 2, 0)
    confusions = []
    real = plots.confusion

    def spy(y, pred, *args):
        confusions.append(pred)
        return real(y, pred, *args)

    monkeypatch.setattr(plots, "confusion", spy)
    oof = np.random.default_rng(0).normal(0, 2, (len(d.train.y), 2))
    ev = evaluate(StubServed(d.val.images[0]), d, oof, 1.5, tmp_path)
    return d, ev, oof, confusions


def test_a_refusal_counts_as_no_diagnosis_in_the_seen_figures(evaluated):
    d, ev, _, _ = evaluated
    assert ev.refused == 1
    union = ev.val["union"]
    assert (union["n"], union["answered"], union["refused"]) == (6, 5, 1)
    assert union["accuracy"] == 1.0  # every answer right...
    assert union["seen_accuracy"] == pytest.approx(5 / 6)  # ...but one film got none
    assert set(ev.val) == {"union", "alpha", "beta"}
    assert ev.val[d.val.samples[0].source]["refused"] == 1


def test_the_confusion_matrix_gets_the_refusal_as_minus_one(evaluated):
    d, _, _, confusions = evaluated
    (pred,) = confusions
    assert pred[0] == -1 and np.array_equal(pred[1:], d.val.y[1:])


def test_figures_are_written_under_their_logged_names(evaluated, tmp_path):
    _, ev, _, _ = evaluated
    names = ["confusion_val.png", "roc_val.png", "reliability.png", "reliability_val.png"]
    assert [p.name for p in ev.figures] == names
    assert all(p.parent == tmp_path and p.stat().st_size > 0 for p in ev.figures)


def test_calibration_is_measured_before_and_after_the_temperature(evaluated):
    d, ev, oof, _ = evaluated
    val_logits = StubServed(d.val.images[0]).run(d.val.images)["logits"]
    assert ev.calibration == calibration_errors(oof, d.train.y, val_logits, d.val.y, 1.5)
    assert ev.calibration["ece_oof_before"] != ev.calibration["ece_oof_after"]


def test_calibration_errors_of_a_perfect_confident_model_are_zero():
    y = np.array([0, 1, 0, 1])
    logits = 50.0 * np.eye(2)[y]
    errors = calibration_errors(logits, y, logits, y, 1.0)
    assert set(errors) == {"ece_oof_before", "ece_oof_after", "ece_val_before", "ece_val_after"}
    assert all(e == pytest.approx(0.0, abs=1e-6) for e in errors.values())


def test_pixel_baseline_is_reported_per_source_with_its_regularisation(evaluated):
    _, ev, _, _ = evaluated
    assert ev.baseline_c in (0.001, 0.01, 0.1)
    assert set(ev.baseline) == {"union", "alpha", "beta"}
    assert ev.baseline["union"]["accuracy"] == 1.0  # bright vs dark centres: trivially apart
