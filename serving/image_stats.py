"""Image statistics of a model input, for data drift: model-independent and cheap.

The web app computes them on every upload (the prediction record keeps them) and the drift
job on the reference images; ``monitoring.features`` adds the network's features. NumPy
only (the web app imports it).
"""

from __future__ import annotations

import numpy as np

from serving.ood import image_stats

NAMES = ("mean", "std", "roughness", "p05", "p50", "p95", "border")
BORDER_PX = 12  # width of the frame whose brightness catches padding and collimation


def image_statistics(images: np.ndarray) -> np.ndarray:
    """``(N, len(NAMES))`` statistics of uint8 model inputs ``(N, H, W)`` (or one image)."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    n = len(x)
    flat = x.reshape(n, -1)
    std_rough = image_stats(x)
    pcts = np.percentile(flat, [5, 50, 95], axis=1).T
    b = BORDER_PX
    frame = np.concatenate(
        [x[:, :b].reshape(n, -1), x[:, -b:].reshape(n, -1),
         x[:, b:-b, :b].reshape(n, -1), x[:, b:-b, -b:].reshape(n, -1)], axis=1)
    return np.column_stack([flat.mean(axis=1), std_rough, pcts, frame.mean(axis=1)])


def stats_dict(image: np.ndarray) -> dict[str, float]:
    """One image's statistics as the JSON the prediction record keeps."""
    row = image_statistics(image)[0]
    return {k: round(float(v), 4) for k, v in zip(NAMES, row, strict=True)}


def stats_array(records: list[dict[str, float]]) -> np.ndarray:
    """Records' ``image_stats`` dicts back to an ``(N, len(NAMES))`` array."""
    return np.array([[r[k] for k in NAMES] for r in records], dtype=np.float64)
