"""Acquisition changes a site can bring, applied to model inputs (uint8, 224 x 224): what the
drift check's power is measured on (``bench/drift.py``) and what its tests alter.

Each is a change a real site makes without meaning to: a tilted detector or patient
(rotation), another exposure or processing curve (gamma), a lower-resolution acquisition
(down- then up-sampling), a detector or export with fewer grey levels (bit depth); and the
gross ones a broken pipeline makes (inverted, noisy, shrunk and padded).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image


def rotated(a: np.ndarray, degrees: float = 20.0) -> np.ndarray:
    """Turned by ``degrees`` (bilinear; the corners filled black)."""
    return np.asarray(Image.fromarray(a).rotate(degrees, resample=Image.Resampling.BILINEAR))


def exposure(a: np.ndarray, gamma: float = 0.8) -> np.ndarray:
    """Another tone curve: grey levels raised to ``gamma`` (< 1 brighter)."""
    return np.round(255.0 * (a / 255.0) ** gamma).astype(np.uint8)


def resolution(a: np.ndarray, pixels: int = 96) -> np.ndarray:
    """Acquired at ``pixels`` a side, then brought back to the model's size."""
    small = Image.fromarray(a).resize((pixels, pixels), Image.Resampling.BILINEAR)
    return np.asarray(small.resize(a.shape[::-1], Image.Resampling.BILINEAR))


def bit_depth(a: np.ndarray, bits: int = 5) -> np.ndarray:
    """Only ``2**bits`` grey levels (a detector or an export with fewer bits)."""
    step = 2 ** (8 - bits)
    return ((a // step) * step + step // 2).astype(np.uint8)


def inverted(a: np.ndarray) -> np.ndarray:
    """Negative (MONOCHROME1 shown as MONOCHROME2)."""
    return (255 - a).astype(np.uint8)


def noisy(a: np.ndarray, seed: int = 0) -> np.ndarray:
    """Gaussian noise of sd 20 grey levels (seeded by the caller for reproducibility)."""
    rng = np.random.default_rng(seed)
    return np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)


def padded(a: np.ndarray) -> np.ndarray:
    """Shrunk to 67% and pasted on black."""
    small = Image.fromarray(a).resize((150, 150), Image.Resampling.BILINEAR)
    canvas = Image.new("L", a.shape[::-1], 0)
    canvas.paste(small, (37, 37))
    return np.asarray(canvas)


SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "rotation": rotated, "exposure": exposure, "resolution": resolution,
    "bit-depth": bit_depth, "inverted": inverted, "noisy": noisy, "padded": padded,
}


def apply(name: str, images: np.ndarray) -> np.ndarray:
    """``SHIFTS[name]`` applied to each of ``images`` (N, H, W)."""
    return np.stack([SHIFTS[name](a) for a in images])
