"""serving/preprocessing.py: the model's input contract for every kind of file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from serving.preprocessing import IMAGE_SIZE, ImageError, preprocess, sniff_format


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def gradient(w: int = 300, h: int = 200) -> np.ndarray:
    """Dark left, bright right: lets a test see orientation after preprocessing."""
    return np.tile(np.linspace(0, 255, w, dtype=np.float32), (h, 1)).astype(np.uint8)


@pytest.mark.parametrize(
    "mode,fmt",
    [("L", "PNG"), ("RGB", "PNG"), ("RGBA", "PNG"), ("L", "JPEG"), ("RGB", "JPEG"), ("P", "PNG")],
)
def test_every_mode_gives_the_contract(mode, fmt):
    img = Image.fromarray(gradient()).convert(mode)
    arr = preprocess(encode(img, fmt))
    assert arr.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert arr.dtype == np.uint8
    # orientation and content survive: left side dark, right side bright
    assert arr[:, :20].mean() < 40 and arr[:, -20:].mean() > 215


def test_16_bit_png_is_stretched_to_8_bit():
    arr16 = (gradient().astype(np.uint16) * 16).astype(np.uint16)  # 12-bit detector range
    img = Image.fromarray(arr16)
    assert img.mode.startswith("I;16")
    arr = preprocess(encode(img))
    assert arr.dtype == np.uint8
    assert arr.min() <= 2 and arr.max() >= 250


def test_rgba_alpha_is_flattened_on_black():
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:, 50:, 3] = 255  # left half transparent
    arr = preprocess(encode(Image.fromarray(rgba, "RGBA")))
    assert arr[:, :100].mean() < 5 and arr[:, -100:].mean() > 250


def test_exif_orientation_is_applied():
    img = Image.fromarray(gradient(300, 200))
    exif = Image.Exif()
    exif[0x0112] = 3  # rotated 180°: the bright side must end up on the left
    arr = preprocess(encode(img, "JPEG", exif=exif.tobytes()))
    assert arr[:, :20].mean() > 215 and arr[:, -20:].mean() < 40


def test_jpeg_draft_matches_full_decode_closely():
    big = Image.fromarray(gradient(2048, 2048))
    data = encode(big, "JPEG", quality=95)
    fast = preprocess(data).astype(int)
    full = np.asarray(
        Image.open(io.BytesIO(data)).convert("L").resize((IMAGE_SIZE, IMAGE_SIZE)), dtype=int
    )
    assert np.abs(fast - full).mean() < 2.0


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "empty"),
        (b"hello, this is text", "not a PNG or JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "damaged"),
    ],
)
def test_bad_bytes_get_a_clear_message(data, message):
    with pytest.raises(ImageError, match=message):
        preprocess(data)


def test_truncated_jpeg_is_refused():
    data = encode(Image.fromarray(gradient(600, 600)), "JPEG")
    with pytest.raises(ImageError, match="damaged or truncated"):
        preprocess(data[: len(data) // 2])


def test_too_many_pixels_is_refused_before_decoding():
    from helpers import bomb_png

    with pytest.raises(ImageError, match="limit is"):
        preprocess(bomb_png(20000))


def test_decode_memory_limit_depends_on_the_pixel_size():
    from helpers import bomb_png

    from serving.preprocessing import MAX_DECODE_MB

    # 6000x6000 RGBA would be 137 MB decoded: over the budget although under MAX_PIXELS.
    with pytest.raises(ImageError, match=r"limit is [\d,]+ pixels for this kind of image \(RGBA"):
        preprocess(bomb_png(6000, bits=8, colour=6))
    assert 6000 * 6000 * 4 > MAX_DECODE_MB * 2**20 > 7000 * 7000 * 2
    # The worst 16-bit case of issue 12 fits (2 bytes a pixel) and decodes to the contract.
    arr = preprocess(bomb_png(7000, bits=16))
    assert arr.shape == (IMAGE_SIZE, IMAGE_SIZE) and arr.dtype == np.uint8


def test_wide_and_transparent_images_shrink_before_converting():
    # 16-bit and RGBA take the shrink-first path: same picture as the direct conversion.
    arr16 = (gradient(1200, 1000).astype(np.uint16) * 257).astype(np.uint16)
    direct = np.asarray(Image.fromarray(gradient(1200, 1000)).resize(
        (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0), dtype=int)
    assert np.abs(preprocess(encode(Image.fromarray(arr16))).astype(int) - direct).max() <= 2
    rgba = np.dstack([np.stack([gradient(1200, 1000)] * 3, -1), np.full((1000, 1200), 255,
                                                                       np.uint8)])
    via_rgba = preprocess(encode(Image.fromarray(rgba, "RGBA"))).astype(int)
    assert np.abs(via_rgba - direct).max() <= 2


def test_tiny_image_is_refused():
    with pytest.raises(ImageError, match="too small"):
        preprocess(encode(Image.new("L", (8, 8))))


def test_sniff_trusts_content_not_names():
    assert sniff_format(encode(Image.new("L", (40, 40)), "JPEG")) == "JPEG"
    assert sniff_format(encode(Image.new("L", (40, 40)), "PNG")) == "PNG"
