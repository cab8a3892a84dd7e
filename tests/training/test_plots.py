"""training/plots.py: every figure of a run is a PNG; refusals get their own column."""

from __future__ import annotations

import numpy as np
import pytest

from training import plots

CLASSES = ["COVID", "Normal", "Viral Pneumonia"]
PNG = b"\x89PNG\r\n\x1a\n"


def probs(n: int, seed: int = 0) -> np.ndarray:
    p = np.random.default_rng(seed).random((n, 3)) + 0.1
    return p / p.sum(1, keepdims=True)


@pytest.fixture
def kept(monkeypatch) -> list:
    """The figures the module closes, kept for inspection."""
    figs: list = []
    real_close = plots.plt.close

    def close(fig=None):
        figs.append(fig)
        real_close(fig)

    monkeypatch.setattr(plots.plt, "close", close)
    return figs


def is_png(path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


def confusion_axes(y, pred, path, kept):
    assert is_png(plots.confusion(np.array(y), np.array(pred), CLASSES, path, "val"))
    (ax,) = kept[-1].axes
    columns = [t.get_text() for t in ax.get_xticklabels()]
    counts = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts
    }
    return columns, counts


def test_confusion_counts_without_refusals(tmp_path, kept):
    columns, counts = confusion_axes([0, 0, 1, 2], [0, 1, 1, 2], tmp_path / "c.png", kept)
    assert columns == CLASSES
    assert counts[(0, 0)] == "1" and counts[(0, 1)] == "1" and counts[(2, 2)] == "1"


def test_a_refused_prediction_gets_a_refused_column(tmp_path, kept):
    columns, counts = confusion_axes([0, 0, 1, 2], [0, -1, 1, -1], tmp_path / "c.png", kept)
    assert columns == CLASSES + ["refused"]
    assert counts[(0, 3)] == "1" and counts[(2, 3)] == "1" and counts[(1, 3)] == "0"
    assert counts[(0, 0)] == "1"  # the refusal is not counted as a wrong class


def test_roc_has_a_curve_per_class_present(tmp_path, kept):
    y = np.array([0, 1, 0, 1, 0, 1])  # no Viral Pneumonia: no curve for it
    assert is_png(plots.roc(y, probs(6), CLASSES, tmp_path / "roc.png", "val"))
    labels = [t.get_text() for t in kept[-1].axes[0].get_legend().get_texts()]
    assert [lab.split(" (")[0] for lab in labels] == ["COVID", "Normal"]


def test_training_curves_show_train_and_held_out_per_member(tmp_path, kept):
    hist = {"loss": [1.0, 0.8], "accuracy": [0.5, 0.6], "val_loss": [1.1, 0.9]}
    path = plots.curves({"fold0": hist, "fold1": hist}, tmp_path / "curves.png")
    assert is_png(path)
    labels = [t.get_text() for t in kept[-1].axes[0].get_legend().get_texts()]
    assert labels == ["fold0 train", "fold0 held-out", "fold1 train", "fold1 held-out"]


def test_reliability_diagram_has_one_line_per_set_of_probabilities(tmp_path, kept):
    y = np.random.default_rng(1).integers(0, 3, 40)
    path = plots.reliability_diagram(
        y, {"before": probs(40), "after": probs(40, 2)}, tmp_path / "rel.png", "oof"
    )
    assert is_png(path)
    labels = [t.get_text() for t in kept[-1].axes[0].get_legend().get_texts()]
    assert labels == ["perfect", "before", "after"]
