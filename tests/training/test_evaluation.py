"""training/evaluation.py: the share of the served heatmap inside the lungs, per source."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from training.evaluation import heat_in_lungs

SIDE = 16


class Model:
    """Answers with a heatmap lit in the left half (image 0 refused: no heatmap)."""

    def predict_arrays(self, images, heatmap=True):
        assert heatmap
        left = np.zeros((SIDE, SIDE))
        left[:, : SIDE // 2] = 1.0
        return [{"heatmap": None} if im[0, 0] == 0 else {"heatmap": left.tolist()}
                for im in images]


class Segmenter:
    """Lungs: the left half for 'a' films, the right half for 'b' films (marked by pixel)."""

    def masks(self, images):
        out = np.zeros((len(images), SIDE, SIDE), bool)
        for m, im in zip(out, images, strict=True):
            if im[0, 1] == 1:
                m[:, : SIDE // 2] = True
            else:
                m[:, SIDE // 2 :] = True
        return out


def test_heat_in_lungs_per_source_leaves_refusals_out():
    images = np.ones((5, SIDE, SIDE), np.uint8)
    images[0, 0, 0] = 0  # refused
    images[3:, 0, 1] = 2  # source b: lungs on the other side
    ds = SimpleNamespace(images=images, sources=np.array(["a", "a", "a", "b", "b"]))
    out = heat_in_lungs(Model(), ds, Segmenter())
    half = {"n": 2.0, "chance": 0.5}
    assert out["a"] == {**half, "mean": pytest.approx(1.0), "below_half": 0.0}
    assert out["b"] == {**half, "mean": pytest.approx(0.0), "below_half": 1.0}
    assert out["union"]["n"] == 4.0 and out["union"]["mean"] == pytest.approx(0.5)
