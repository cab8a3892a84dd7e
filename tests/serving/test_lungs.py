"""serving/lungs.py: the lung box, the crop, the heatmap put back, the in-lungs share."""

from __future__ import annotations

import numpy as np
import pytest

from serving.lungs import MARGIN, box, crop, in_lungs, uncrop


def two_lungs(h: int = 128, w: int = 128) -> np.ndarray:
    """A mask with two rectangular 'lungs': rows 30-99, columns 20-59 and 70-109."""
    m = np.zeros((h, w), bool)
    m[30:100, 20:60] = True
    m[30:100, 70:110] = True
    return m


def test_box_spans_both_lungs_with_the_margin():
    top, left, bottom, right = box(two_lungs())
    dy, dx = MARGIN * 70 / 128, MARGIN * 90 / 128
    assert (top, bottom) == pytest.approx((30 / 128 - dy, 100 / 128 + dy))
    assert (left, right) == pytest.approx((20 / 128 - dx, 110 / 128 + dx))


def test_stray_pixels_do_not_stretch_the_box():
    m = two_lungs()
    m[2, 2] = m[125, 125] = True  # segmenter noise in the corners
    assert box(m) == pytest.approx(box(two_lungs()))


def test_no_lungs_means_the_whole_film():
    assert box(np.zeros((64, 48), bool)) == (0.0, 0.0, 1.0, 1.0)


def test_a_sliver_is_not_a_lung_box():
    m = np.zeros((128, 128), bool)
    m[60:66, 10:120] = True  # 5% of the height: not two lungs
    assert box(m) == (0.0, 0.0, 1.0, 1.0)


def test_crop_keeps_the_size_and_magnifies_the_box():
    img = np.zeros((100, 100), np.uint8)
    img[25:75, 25:75] = 200  # a bright square filling the central half
    out = crop(img, (0.25, 0.25, 0.75, 0.75))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert out[5:95, 5:95].min() == 200  # the square now fills the frame


def test_uncrop_puts_the_map_back_where_the_crop_was():
    maps = np.ones((28, 28), np.float32)
    full = uncrop(maps, (0.5, 0.25, 1.0, 0.75))
    assert full.shape == (28, 28)
    assert full[:14].sum() == 0 and full[14:, :7].sum() == 0 and full[14:, 21:].sum() == 0
    assert full[14:, 7:21].min() == pytest.approx(1.0)


def test_in_lungs_share_of_heat():
    mask = two_lungs()
    inside = mask.astype(np.float32)
    corners = np.zeros_like(inside)
    corners[:10, :10] = 1.0
    assert in_lungs(inside, mask) == pytest.approx(1.0)
    assert in_lungs(corners, mask) == 0.0
    assert in_lungs(inside + corners, mask) == pytest.approx(mask.sum() / (mask.sum() + 100))
    assert in_lungs(np.zeros((28, 28)), mask) == 0.0  # no heat at all: nothing inside
    small = np.asarray(inside[::4, ::4])  # a 32x32 heatmap is resized to the mask
    assert in_lungs(small, mask) > 0.9
