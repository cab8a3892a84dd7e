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
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from serving import integrity
from serving.background import Background

T = TypeVar("T")
U = TypeVar("U")

IMAGE_SIZE = int(os.environ.get("RADIO_IMAGE_SIZE", "224"))
# A 3000x3000 digital radiograph is 9 MP and large detectors reach about 18 MP; anything
# far beyond is hostile or a mistake.
MAX_PIXELS = int(os.environ.get("RADIO_MAX_PIXELS", str(50_000_000)))
# Memory one decoded image may take, in MB (2**20 bytes). Pillow keeps RGB and RGBA at 4
# bytes a pixel and 16-bit greyscale at 2, so the pixel limit is tighter for those (25 MP
# in colour, 50 MP in 16-bit): this keeps a web worker under 300 MB on a 2 GB frontend
# whatever the file claims (`make bench-decode`).
MAX_DECODE_MB = int(os.environ.get("RADIO_MAX_DECODE_MB", "100"))
# Pillow's lenient mode would turn a cut file into an image with a grey bottom.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Magic bytes of the formats Radio accepts. The file name is never trusted.
_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
}
# Bytes a decoded pixel takes in Pillow's memory, per mode (unknown modes count as 4).
# A palette image with transparency becomes RGBA before it is flattened, so P counts as 4.
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}
_WIDE = ("I;16", "I;16B", "I;16L", "I", "F")  # more than 8 bits: stretched to 8


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


def _damaged(fmt: str) -> ImageError:
    return ImageError(f"The {fmt} file is damaged or truncated and cannot be decoded.")


def _decode(data: bytes, fmt: str, size: int, check: bool = False) -> Image.Image:
    """Open, check the size against the limits, decode (JPEG at reduced scale) and load.

    ``check``: run the PNG structure check once the header has passed the limits, so a
    hostile header never costs a full inflate (a JPEG's walk is cheap and done earlier).
    """
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
        # DCT scaling: libjpeg decodes straight to 1/2..1/8 size, never the full image.
        img.draft("L", (2 * size, 2 * size))
    bpp = _BYTES_PER_PIXEL.get(img.mode, 4)
    decoded = img.size[0] * img.size[1] * bpp
    if decoded > MAX_DECODE_MB * 2**20:
        limit = MAX_DECODE_MB * 2**20 // bpp
        raise ImageError(
            f"The image has too many pixels to decode safely; the limit is {limit:,} pixels "
            f"for this kind of image ({img.mode}, {width}x{height} sent)."
        )
    if check and fmt == "PNG":
        _together(img.load, lambda: integrity.check_png(data))
    else:
        img.load()
    return img


def _together(main: Callable[[], T], side: Callable[[], U]) -> tuple[T, U]:
    """``main()`` here while ``side()`` runs in a second thread (a 1024² PNG's structure
    check 3.5 ms, a 2048² JPEG's probe decode about as much: no latency on two cores). Both
    results; when either raised, the side's exception first (the structure check names the
    damage), else main's."""
    side_task = Background(side)
    try:
        result = main()
    finally:
        side_result = side_task()  # waits; its exception replaces main's
    return result, side_result


def open_image(data: bytes, size: int = IMAGE_SIZE) -> Image.Image:
    """Decode PNG/JPEG bytes fully into an upright PIL image.

    Raises ImageError for empty, non-image, truncated, corrupt or oversized input. The file
    structure is checked (:mod:`serving.integrity`) once the header passed the size limits;
    a JPEG is decoded twice, the
    second time with filler after each scan, and must give the same pixels: otherwise a
    scan ended early and libjpeg filled the rest with grey. JPEGs are decoded at reduced
    scale (``draft``) when that still leaves at least twice the target size, which makes
    2048 px radiographs several times cheaper.
    """
    fmt = sniff_format(data)
    try:
        if fmt == "PNG":
            img = _decode(data, fmt, size, check=True)
        else:
            filled = integrity.with_scan_filler(data, integrity.jpeg_layout(data))
            img, probe = _together(lambda: _decode(data, fmt, size),
                                   lambda: _decode(filled, fmt, size))
            same = img.size == probe.size and img.tobytes() == probe.tobytes()
            del probe
            if not same:
                raise _damaged(fmt)
        # In place: without an orientation tag, exif_transpose would return a full copy.
        ImageOps.exif_transpose(img, in_place=True)
        return img
    except ImageError:
        raise
    except integrity.ScanLimitError as exc:
        raise ImageError(str(exc)) from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"The image has too many pixels to decode safely; the limit is {MAX_PIXELS:,} pixels."
        ) from exc
    except (integrity.StructureError, UnidentifiedImageError, OSError, SyntaxError,
            ValueError) as exc:
        raise _damaged(fmt) from exc


def _shrink(img: Image.Image, size: int) -> Image.Image:
    """Box-average ``img`` in its own mode by the integer factor ``resize(reducing_gap=2.0)``
    would use, so that converting after shrinking touches a fraction of the pixels.

    A last partial row or column of blocks (fewer than the factor's pixels) is left out.
    """
    width, height = img.size
    fx, fy = max(width // size // 2, 1), max(height // size // 2, 1)
    if fx == 1 and fy == 1:
        return img
    # Pillow's reduce() has no 16-bit mode; its BOX resize has, and averages the same.
    return img.resize((width // fx, height // fy), Image.Resampling.BOX,
                      box=(0, 0, width // fx * fx, height // fy * fy))


def _stretch(img: Image.Image, lo: float, hi: float) -> Image.Image:
    """Wide greyscale -> 8 bits, ``lo`` black and ``hi`` white (extrema of the full image)."""
    arr = np.asarray(img, dtype=np.float32)
    scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    return Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8), mode="L")


def to_greyscale(img: Image.Image) -> Image.Image:
    """8-bit greyscale whatever the mode: 16-bit and float are stretched, alpha is flattened."""
    if img.mode in _WIDE:
        lo, hi = img.getextrema()
        return _stretch(img, float(lo), float(hi))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("L")
    return img if img.mode == "L" else img.convert("L")


def to_array(img: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """Resize a decoded image to the model's ``(size, size)`` uint8 contract.

    8-bit greyscale and RGB convert first (as every image seen in training so far). Wide
    (16-bit, float) and transparent images shrink first and convert after, which costs a
    fraction of the memory: converting a 7000x7000 16-bit image at full size took ~0.9 GB.
    """
    if img.mode in _WIDE:
        lo, hi = img.getextrema()  # of the full image, as if converted before shrinking
        img = _stretch(_shrink(img, size), float(lo), float(hi))
    elif img.mode in ("RGBA", "LA"):  # P and 1 would shrink with NEAREST: not those
        img = _shrink(img, size)
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
