"""The compact /invocations format between the web app and the model server.

Request (JSON, ``Content-Type: application/json``)::

    {"inputs": {"image": ["<base64 of H*W uint8 bytes, row-major>", ...]},
     "params": {"heatmap": true}}

Each image is the output of :func:`serving.preprocessing.preprocess` (``IMAGE_SIZE`` square,
uint8 greyscale), sent as raw bytes in base64: 67 kB per image instead of the ~3 MB of a
JSON float array, and decoded by NumPy without parsing numbers.

Response: ``{"predictions": [<one dict per image>]}``; see :func:`serving.pyfunc` for the
fields (``status``, ``label``, ``probabilities``, ``heatmap``...).

NumPy only: imported by the web app.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence

import numpy as np

from serving.preprocessing import IMAGE_SIZE

COLUMN = "image"


def encode_image(arr: np.ndarray) -> str:
    """uint8 ``(IMAGE_SIZE, IMAGE_SIZE)`` array -> base64 text."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    if arr.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected a {IMAGE_SIZE}x{IMAGE_SIZE} array, got {arr.shape}")
    return base64.b64encode(arr.tobytes()).decode("ascii")


def decode_image(text: str | bytes) -> np.ndarray:
    """base64 text -> uint8 ``(IMAGE_SIZE, IMAGE_SIZE)`` array; ValueError if malformed."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError) as exc:
        raise ValueError("image is not valid base64") from exc
    if len(raw) != IMAGE_SIZE * IMAGE_SIZE:
        raise ValueError(f"image must be {IMAGE_SIZE * IMAGE_SIZE} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)


def decode_batch(texts: Iterable[str | bytes]) -> np.ndarray:
    """Several base64 images -> uint8 ``(N, IMAGE_SIZE, IMAGE_SIZE)``."""
    return np.stack([decode_image(t) for t in texts])


def build_request(images: Sequence[np.ndarray], heatmap: bool = True) -> dict:
    """The JSON body for ``POST /invocations``."""
    return {
        "inputs": {COLUMN: [encode_image(a) for a in images]},
        "params": {"heatmap": bool(heatmap)},
    }
