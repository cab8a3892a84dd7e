"""Class activation heatmaps: what the network looked at, for the class it chose. NumPy only."""

from __future__ import annotations

import numpy as np

HEATMAP_SIZE = 28


def _resize_bilinear(maps: np.ndarray, size: int) -> np.ndarray:
    """``(N, h, w)`` -> ``(N, size, size)``, bilinear, align-corners=False."""
    n, h, w = maps.shape

    def coords(src: int):
        pos = np.clip((np.arange(size) + 0.5) * src / size - 0.5, 0, src - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, src - 1)
        return lo, hi, pos - lo

    y0, y1, fy = coords(h)
    x0, x1, fx = coords(w)
    top = maps[:, y0][:, :, x0] * (1 - fx) + maps[:, y0][:, :, x1] * fx
    bottom = maps[:, y1][:, :, x0] * (1 - fx) + maps[:, y1][:, :, x1] * fx
    return top * (1 - fy)[None, :, None] + bottom * fy[None, :, None]


def heatmaps(cam: np.ndarray, classes_idx: np.ndarray, size: int = HEATMAP_SIZE) -> np.ndarray:
    """Class activation maps of the chosen classes, positive part, scaled to [0, 1]."""
    chosen = np.maximum(cam[np.arange(len(classes_idx)), :, :, classes_idx], 0.0)
    peak = chosen.max(axis=(1, 2), keepdims=True)
    scaled = np.where(peak > 0, chosen / np.maximum(peak, 1e-12), 0.0)
    return np.clip(_resize_bilinear(scaled, size), 0.0, 1.0)
