"""Lung fields at answer time: the segmentation network's mask, the lung box, the crop.

The model input is the app's ``(size, size)`` uint8 image (the wire contract does not
change). The segmenter sees it shrunk to ``SEG_SIZE``; the box around both lungs, widened
by ``MARGIN`` of its size on each side, is cut from the full-resolution input and resized
back to ``size``. Training crops its images with this same code (``training.lungs``), so
the classifier learns on exactly what it is served.

Why a box and not the mask itself: masking out everything but the lungs also removes the
retrocardiac lung and the costophrenic angles that the SCR convention leaves out, where
consolidation often is; a box keeps them and drops the shoulders, the neck, text markers
and the film's corners (the cues measured as shortcuts in version 1's heatmaps).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

SEG_SIZE = 128
MARGIN = 0.08
# A box thinner than this share of the image side means the segmenter found no lungs:
# the whole image is used (and the share of heatmap in the lungs says so).
MIN_BOX = 0.25


def seg_input(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, H, W)`` -> float32 ``(N, SEG_SIZE, SEG_SIZE, 1)`` in 0-255."""
    return np.stack(
        [
            np.asarray(
                Image.fromarray(np.asarray(a, np.uint8)).resize(
                    (SEG_SIZE, SEG_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0
                ),
                np.float32,
            )
            for a in images
        ]
    )[..., None]


def box(mask: np.ndarray, margin: float = MARGIN) -> tuple[float, float, float, float]:
    """Fractional ``(top, left, bottom, right)`` of a boolean mask's lungs, with a margin.

    Rows and columns count as lung when at least 2% of the mask's lung pixels' largest
    row/column count lies in them, so a few stray pixels do not stretch the box. No lungs
    (or a box thinner than ``MIN_BOX``): the whole image.
    """
    h, w = mask.shape
    rows, cols = mask.sum(axis=1), mask.sum(axis=0)
    if rows.max(initial=0) == 0:
        return 0.0, 0.0, 1.0, 1.0
    r = np.flatnonzero(rows >= 0.02 * rows.max())
    c = np.flatnonzero(cols >= 0.02 * cols.max())
    top, bottom = r[0] / h, (r[-1] + 1) / h
    left, right = c[0] / w, (c[-1] + 1) / w
    if bottom - top < MIN_BOX or right - left < MIN_BOX:
        return 0.0, 0.0, 1.0, 1.0
    dy, dx = margin * (bottom - top), margin * (right - left)
    return max(top - dy, 0.0), max(left - dx, 0.0), min(bottom + dy, 1.0), min(right + dx, 1.0)


def crop(image: np.ndarray, frac_box: tuple[float, float, float, float]) -> np.ndarray:
    """Cut ``frac_box`` out of a uint8 ``(H, W)`` image and resize it back to ``(H, W)``."""
    h, w = image.shape
    top, left, bottom, right = frac_box
    region = (left * w, top * h, right * w, bottom * h)
    out = Image.fromarray(np.asarray(image, np.uint8)).resize(
        (w, h), Image.Resampling.BILINEAR, box=region
    )
    return np.asarray(out, np.uint8)


def uncrop(maps: np.ndarray, frac_box: tuple[float, float, float, float]) -> np.ndarray:
    """Place a heatmap computed on the crop back into the full frame (zero outside)."""
    h, w = maps.shape
    top, left, bottom, right = frac_box
    y0, x0 = round(top * h), round(left * w)
    y1, x1 = max(round(bottom * h), y0 + 1), max(round(right * w), x0 + 1)
    inner = Image.fromarray(np.asarray(maps, np.float32), mode="F").resize(
        (x1 - x0, y1 - y0), Image.Resampling.BILINEAR
    )
    out = np.zeros((h, w), np.float32)
    out[y0:y1, x0:x1] = np.asarray(inner)
    return out


def in_lungs(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Share of a non-negative heatmap's mass inside the lung mask (both resized alike)."""
    if heatmap.shape != mask.shape:
        heatmap = np.asarray(
            Image.fromarray(np.asarray(heatmap, np.float32), mode="F").resize(
                mask.shape[::-1], Image.Resampling.BILINEAR
            )
        )
    heat = np.clip(heatmap, 0, None)
    total = float(heat.sum())
    return float(heat[mask].sum() / total) if total > 0 else 0.0


class LungSegmenter:
    """The ONNX segmentation network: images -> boolean lung masks at ``SEG_SIZE``."""

    def __init__(self, path: str, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # As the classifier's session (serving/pyfunc.py): no spinning unless asked.
        opts.add_session_config_entry("session.intra_op.allow_spinning",
                                      os.environ.get("RADIO_ORT_SPIN", "0"))
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def masks(self, images: np.ndarray, batch: int = 32) -> np.ndarray:
        """uint8 ``(N, H, W)`` -> bool ``(N, SEG_SIZE, SEG_SIZE)``."""
        out = []
        for i in range(0, len(images), batch):
            prob = self.session.run(None, {self.input: seg_input(images[i : i + batch])})[0]
            out.append(prob[..., 0] > 0.5)
        return np.concatenate(out) if out else np.zeros((0, SEG_SIZE, SEG_SIZE), bool)

    def crop(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
        """Images cropped to their lung boxes, the masks, and the boxes."""
        masks = self.masks(images)
        boxes = [box(m) for m in masks]
        crops = np.stack([crop(im, b) for im, b in zip(images, boxes, strict=True)])
        return crops, masks, boxes
