"""serving/integrity.py and its use in preprocessing: no cut or corrupted X-ray is decoded.

Regression tests for issue 12: a JPEG cut short and given an end marker used to decode with
a grey bottom and get a diagnosis. Every val X-ray of ../shared/data is cut at several
points, with and without the format's end marker, and must be refused; the whole files must
still decode exactly as before.
"""

from __future__ import annotations

import io
import struct
import zlib

import helpers
import numpy as np
import pytest
from PIL import Image

from serving import integrity
from serving.preprocessing import ImageError, preprocess

CUTS = (0.1, 0.3, 0.6, 0.8, 0.95, 0.99)
IEND = helpers.png_chunk(b"IEND", b"")
EOI = b"\xff\xd9"


def _val_xrays():
    files = helpers.val_xrays()
    if not files:
        pytest.skip(f"no val X-rays in {helpers.SHARED_DATA} (shared data absent here)")
    return files


def _encode(arr: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def _refused(data: bytes) -> str:
    with pytest.raises(ImageError) as info:
        preprocess(data)
    return str(info.value)


def test_every_cut_val_xray_is_refused_with_and_without_end_marker():
    files = _val_xrays()
    formats = set()
    for path in files:
        data = path.read_bytes()
        fmt = "PNG" if data.startswith(integrity.PNG_SIGNATURE) else "JPEG"
        formats.add(fmt)
        end_marker = IEND if fmt == "PNG" else EOI
        for frac in CUTS:
            cut = data[: int(len(data) * frac)]
            for variant in (cut, cut + end_marker):
                message = _refused(variant)
                assert message == f"The {fmt} file is damaged or truncated and cannot be decoded."
    assert formats == {"PNG", "JPEG"}  # both decoders were exercised


def test_whole_val_xrays_pass_the_checks():
    for path in _val_xrays():
        assert preprocess(path.read_bytes()).shape == (224, 224)


def test_large_jpeg_header_with_little_data_is_refused():
    # A 7000x7000 header followed by 1 kB of scan data and an end marker.
    side = 7000
    arr = (np.add.outer(np.arange(side), np.arange(side)) % 256).astype(np.uint8)
    data = _encode(arr, "JPEG", quality=80)
    layout = integrity.jpeg_layout(data)
    scan_start = layout.scan_ends[0] - 1  # inside the only scan
    header_end = data.rfind(b"\xff\xda", 0, scan_start)
    assert header_end > 0
    message = _refused(data[: header_end + 1024] + EOI)
    assert "damaged or truncated" in message


def test_progressive_jpeg_missing_scans_or_cut_inside_one_is_refused():
    arr = (np.add.outer(np.arange(600), np.arange(500)) % 256).astype(np.uint8)
    data = _encode(arr, "JPEG", progressive=True, quality=90)
    assert integrity.jpeg_layout(data).progressive
    assert preprocess(data).shape == (224, 224)
    with pytest.raises(integrity.StructureError, match="scans are missing"):
        integrity.jpeg_layout(data[: len(data) // 2] + EOI)
    assert "damaged" in _refused(data[: int(len(data) * 0.97)] + EOI)


def test_corrupted_png_chunk_is_refused_by_its_crc():
    data = bytearray(_encode(np.full((64, 64), 90, np.uint8), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF  # one flipped byte of compressed pixels
    with pytest.raises(integrity.StructureError, match="CRC"):
        integrity.check_png(bytes(data))
    assert "damaged" in _refused(bytes(data))


def test_png_with_valid_crcs_but_a_short_zlib_stream_is_refused():
    # Crafted: the IDAT chunk is whole (good CRC) but holds only half of the rows.
    raw = b"".join(b"\x00" + bytes([r % 256]) * 64 for r in range(32))
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0)
    data = (integrity.PNG_SIGNATURE + helpers.png_chunk(b"IHDR", ihdr)
            + helpers.png_chunk(b"IDAT", zlib.compress(raw)) + IEND)
    # Pillow alone would decode it with the missing rows black.
    with pytest.raises(integrity.StructureError, match="ends early"):
        integrity.check_png(data)
    assert "damaged" in _refused(data)


def test_png_raw_size_counts_every_interlace_pass():
    arr = (np.arange(37 * 50).reshape(37, 50) % 256).astype(np.uint8)
    data = _encode(arr, "PNG")
    raw = zlib.decompress(b"".join(data[s:e] for s, e in _idats(data)))
    assert integrity.png_raw_size(50, 37, 8, 0, 0) == len(raw)
    # Pillow writes no interlaced PNG:
    # Adam7 by hand: a 1x1 image has one pass of one row of one byte (+ filter byte).
    assert integrity.png_raw_size(1, 1, 8, 0, 1) == 2
    assert integrity.png_raw_size(8, 8, 8, 2, 1) == sum(
        h * (1 + 3 * w) for w, h in ((1, 1), (1, 1), (2, 1), (2, 2), (4, 2), (4, 4), (8, 4)))


def _idats(data: bytes):
    pos = len(integrity.PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            yield pos + 8, pos + 8 + length
        pos += 12 + length


def test_jpeg_structure_walk_rejects_broken_segments():
    data = _encode(np.full((64, 64), 90, np.uint8), "JPEG")
    layout = integrity.jpeg_layout(data)
    assert layout.end == len(data) and not layout.progressive and layout.components == [1]
    with pytest.raises(integrity.StructureError, match="ends inside a scan"):
        integrity.jpeg_layout(data[:-2])
    with pytest.raises(integrity.StructureError, match="past the end"):
        integrity.jpeg_layout(data[:30])
    with pytest.raises(integrity.StructureError, match="unexpected marker 0x00"):
        integrity.jpeg_layout(data[:3] + b"\x00" + data[4:])  # APP0 marker byte flipped
    assert integrity.with_scan_filler(data, layout) != data


def test_filler_does_not_change_a_complete_jpeg():
    arr = (np.add.outer(np.arange(300), np.arange(200)) % 256).astype(np.uint8)
    data = _encode(arr, "JPEG", quality=85)
    filled = integrity.with_scan_filler(data, integrity.jpeg_layout(data))
    assert np.array_equal(preprocess(filled), preprocess(data))
