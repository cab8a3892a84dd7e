"""The one image preprocessing of Radio, shared by training, the model server and the web app.

Input contract of the model (what every caller must produce):

* ``preprocess(data) -> np.ndarray`` of shape ``(IMAGE_SIZE, IMAGE_SIZE)``, dtype ``uint8``,
  greyscale, range 0-255, the whole image squashed to a square (the lung fields keep their
  place; aspect ratio is an acquisition cue we do not want to keep anyway).
* The network itself standardises each image (zero mean, unit variance) in its first
  layer, so exposure and detector gain (hospital cues) never reach the convolutions and
  every caller sends the same uint8 array.

This module needs only Pillow and NumPy: the web app imports it and must never pull in
TensorFlow.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SIZE = int(os.environ.get("RADIO_IMAGE_SIZE", "224"))
# A 3000x3000 digital radiograph is 9 MP; anything far beyond is hostile or a mistake.
MAX_PIXELS = int(os.environ.get("RADIO_MAX_PIXELS", str(50_000_000)))

# Magic bytes of the formats Radio accepts. The file name is never trusted.
_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
}


class ImageError(ValueError):
    """An upload that is not a usable image; the message is meant for the user."""


def sniff_format(data: bytes) -> str:
    """Return "PNG" or "JPEG" from the magic bytes, or raise ImageError."""
    if not data:
        raise ImageError("The file is empty.")
    for magic, name in _MAGIC.items():
        if data.startswith(magic):
            return name
    raise ImageError("The file is not a PNG or JPEG image (its content says otherwise).")


def open_image(data: bytes, size: int = IMAGE_SIZE) -> Image.Image:
    """Decode PNG/JPEG bytes fully into an upright PIL image.

    Raises ImageError for empty, non-image, truncated, corrupt or oversized input.
    JPEGs are decoded at reduced scale (``draft``) when that still leaves at least
    twice the target size, which makes 2048 px radiographs several times cheaper.
    """
    fmt = sniff_format(data)
    try:
        img = Image.open(io.BytesIO(data))
        if img.format != fmt:
            raise ImageError(f"The file looks like {fmt} but does not decode as one.")
        width, height = img.size
        if width * height > MAX_PIXELS:
            raise ImageError(
                f"The image is {width}x{height} pixels; the limit is {MAX_PIXELS:,} pixels."
            )
        if width < 32 or height < 32:
            raise ImageError(f"The image is only {width}x{height} pixels; too small to read.")
        if fmt == "JPEG":
            img.draft("L", (2 * size, 2 * size))
        img.load()
        return ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"The image has too many pixels to decode safely; the limit is {MAX_PIXELS:,} pixels."
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"The {fmt} file is damaged or truncated and cannot be decoded.") from exc


def to_greyscale(img: Image.Image) -> Image.Image:
    """8-bit greyscale whatever the mode: 16-bit and float are stretched, alpha is flattened."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("L")
    return img if img.mode == "L" else img.convert("L")


def to_array(img: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """Resize a decoded image to the model's ``(size, size)`` uint8 contract."""
    grey = to_greyscale(img)
    # reducing_gap makes Pillow box-reduce large images before the final filter: fast and
    # alias-free on 2048+ px radiographs.
    resized = grey.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(resized, dtype=np.uint8)


def preprocess(data: bytes, size: int = IMAGE_SIZE) -> np.ndarray:
    """Bytes of a PNG/JPEG X-ray -> ``(size, size)`` uint8 array (the model input contract)."""
    return to_array(open_image(data, size), size)


def preprocess_path(path: str | Path, size: int = IMAGE_SIZE) -> np.ndarray:
    """Same as :func:`preprocess` for a file on disk."""
    return preprocess(Path(path).read_bytes(), size)


def thumbnails(images: np.ndarray, size: int = 32) -> np.ndarray:
    """uint8 ``(N, H, W)`` -> ``(N, size*size)`` float32 pixels, zero mean and unit std per image.

    The input of the pixel baseline and of the pixel-space "is it a chest X-ray" check.
    """
    small = np.stack(
        [
            np.asarray(Image.fromarray(a).resize((size, size), Image.Resampling.BOX), np.float32)
            for a in np.asarray(images, dtype=np.uint8)
        ]
    ).reshape(len(images), -1)
    small -= small.mean(axis=1, keepdims=True)
    return small / np.maximum(small.std(axis=1, keepdims=True), 1.0)
