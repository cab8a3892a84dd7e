"""The limits a DICOM upload must pass before any of its pixels is decompressed.

A DICOM file says in its header what its pixels will cost (Rows x Columns x
BitsAllocated/8 x SamplesPerPixel x NumberOfFrames); a compressed one can be 1.5 MB on
the wire and 1.4 GB once decoded (issue 26). Everything here is read from the header and
the compressed bytes, never from decoded pixels:

* :func:`inflate` undoes the *Deflated Explicit VR Little Endian* transfer syntax in bounded
  pieces: a deflate bomb stops at :func:`max_bytes` plus the header allowance;
* :func:`check_budget` refuses a header whose pixels exceed :data:`MAX_PIXELS` or whose
  decoded bytes exceed :func:`max_bytes`;
* :func:`check_frame` walks the compressed frame of an encapsulated syntax: its own
  dimensions must be the header's (a JPEG 2000 or JPEG-LS codestream declaring 60000 x 60000
  inside a 64 x 64 DICOM never reaches the decoder), and it must be whole: the marker walk
  of ``serving.integrity`` for the JPEG family (with the filler comparison of plain JPEGs
  for the 8-bit ones Pillow decodes), the tile-part chain for JPEG 2000, the segment table
  for RLE.

Errors are :class:`DicomLimitError` (``app.platform.failures.Malformed``) with the user's
message.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from itertools import pairwise

from app.platform.failures import Malformed
from serving import integrity
from serving.preprocessing import MAX_DECODE_MB, MAX_PIXELS

# Decoded pixel bytes one DICOM may need, in MB. Reading and decoding hold the pixel data
# as read, the decoded frame and an 8-bit copy (app.intake.dicom.to_display works in bands), and
# saving the de-identified copy holds it twice: a worker needs up to ~4 times this. The
# default passes the largest detectors (43 x 43 cm at 100 um: 4300 x 4300, 16-bit, 35 MB)
# and keeps a worker under 300 MB with eight hostile files at once (make bench-decode).
MAX_DICOM_DECODE_MB = int(os.environ.get("RADIO_MAX_DICOM_DECODE_MB",
                                         str(min(MAX_DECODE_MB, 40))))
# Room for the rest of a deflated dataset (everything but the pixels), in bytes.
HEADER_ALLOWANCE = 4 * 2**20
DAMAGED = "The DICOM file is damaged and cannot be read."
DAMAGED_IMAGE = "The DICOM image data is damaged or truncated and cannot be decoded."

# Transfer syntaxes by how their pixel data is checked before decoding.
NATIVE = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                    "1.2.840.10008.1.2.1.99"})
DEFLATED = "1.2.840.10008.1.2.1.99"
JPEG_8BIT = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"})
JPEG_LOSSLESS = frozenset({"1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
                           "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
LOSSLESS_FILLER = frozenset({"1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"})
JPEG_2000 = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"})
RLE = "1.2.840.10008.1.2.5"
SUPPORTED = NATIVE | JPEG_8BIT | JPEG_LOSSLESS | JPEG_2000 | {RLE}


class DicomLimitError(Malformed, ValueError):
    """A DICOM refused before decoding, with a message meant for the user. A ValueError too:
    the decoders' callers treat it as the damaged data it is."""


def max_bytes() -> int:
    """Decoded pixel bytes one DICOM may need."""
    return MAX_DICOM_DECODE_MB * 2**20


def inflate(deflated: bytes) -> bytes:
    """The dataset of a deflated DICOM, inflated at most to the budget plus the header
    allowance; DicomLimitError when it would be larger or is not a deflate stream."""
    limit = max_bytes() + HEADER_ALLOWANCE
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(deflated, limit + 1)
    except zlib.error as exc:
        raise DicomLimitError(DAMAGED + " (its data is not deflate-compressed as its "
                              "transfer syntax says)") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise DicomLimitError("The DICOM file inflates to more than "
                              f"{limit // 2**20} MB; it has too many pixels to decode safely.")
    if not inflater.eof:
        raise DicomLimitError(DAMAGED + " (its deflate-compressed data ends early)")
    return out


def header_int(value: object, name: str, default: int) -> int:
    """A non-negative integer attribute; DicomLimitError when it is not one."""
    try:
        number = int(str(value)) if value not in (None, "") else default
    except ValueError as exc:
        raise DicomLimitError(f"{DAMAGED} ({name} is not a number)") from exc
    if number < 0:
        raise DicomLimitError(f"{DAMAGED} ({name} is negative)")
    return number


def check_budget(ds: object) -> tuple[int, int]:
    """``(rows, columns)`` of a header whose pixels fit the pixel and byte budgets."""
    get = ds.get  # type: ignore[attr-defined]
    rows, cols = header_int(get("Rows"), "Rows", 0), header_int(get("Columns"), "Columns", 0)
    bits = header_int(get("BitsAllocated"), "BitsAllocated", 8)
    samples = header_int(get("SamplesPerPixel"), "SamplesPerPixel", 1)
    frames = header_int(get("NumberOfFrames"), "NumberOfFrames", 1) or 1
    pixels = rows * cols * frames
    if pixels > MAX_PIXELS:
        raise DicomLimitError(f"The image is {cols}x{rows} pixels ({frames} frame(s)); "
                              f"the limit is {MAX_PIXELS:,} pixels.")
    needed = pixels * samples * max(-(-bits // 8), 1)
    if needed > max_bytes():
        raise DicomLimitError(
            f"The image has too many pixels to decode safely: {cols}x{rows}, {bits}-bit, "
            f"{samples} sample(s), {frames} frame(s) need {needed / 2**20:,.0f} MB; the limit "
            f"is {MAX_DICOM_DECODE_MB} MB.")
    return rows, cols


def _same_size(kind: str, height: int, width: int, rows: int, cols: int) -> None:
    if (height, width) != (rows, cols):
        raise DicomLimitError(f"The DICOM header says {cols}x{rows} pixels but its "
                              f"{kind} image says {width}x{height}; the file is damaged.")


def _check_jpeg(frame: bytes, syntax: str, rows: int, cols: int, bits: int) -> bytes | None:
    """The frame with filler before each scan's end when its decoder (GDCM) must be
    compared by the caller (lossless JPEG); None when checked here or not checkable."""
    from PIL import Image

    try:
        layout = integrity.jpeg_layout(frame, lossless=syntax in JPEG_LOSSLESS)
    except integrity.ScanLimitError as exc:
        raise DicomLimitError(str(exc)) from exc
    except integrity.StructureError as exc:
        raise DicomLimitError(DAMAGED_IMAGE) from exc
    _same_size("JPEG", layout.height, layout.width, rows, cols)
    if syntax in JPEG_8BIT and bits == 8:
        # The plain-JPEG truncation check (serving.preprocessing): a scan that ended early
        # decodes differently once filler is put before the marker that ends it. Decoded at
        # reduced scale: a cut shows at any scale.
        filled = integrity.with_scan_filler(frame, layout)
        try:
            shown = [Image.open(io.BytesIO(b)) for b in (frame[: layout.end], filled)]
            for img in shown:
                img.draft("L", (256, 256))
                img.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise DicomLimitError(DAMAGED_IMAGE) from exc
        if shown[0].tobytes() != shown[1].tobytes():
            raise DicomLimitError(DAMAGED_IMAGE)
        return None
    if syntax in LOSSLESS_FILLER:
        return integrity.with_scan_filler(frame, layout)
    return None  # JPEG-LS: CharLS refuses a cut stream itself


def _check_j2k(frame: bytes, rows: int, cols: int) -> None:
    """JPEG 2000: the SIZ dimensions, then the chain of tile-parts up to the end marker."""
    start = frame.find(b"\xff\x4f\xff\x51")  # SOC then SIZ (a JP2 wrapper comes before)
    if start < 0 or len(frame) < start + 42:
        raise DicomLimitError(DAMAGED_IMAGE)
    xsiz, ysiz, xo, yo = struct.unpack(">IIII", frame[start + 8 : start + 24])
    _same_size("JPEG 2000", ysiz - yo, xsiz - xo, rows, cols)
    pos = start + 2
    end = len(frame.rstrip(b"\x00")) if not frame.endswith(b"\xff\xd9") else len(frame)
    if frame[end - 2 : end] != b"\xff\xd9":
        raise DicomLimitError(DAMAGED_IMAGE)
    # Main header segments (each with its length) up to the first tile-part (SOT).
    while frame[pos : pos + 2] != b"\xff\x90":
        if pos + 4 > end or frame[pos] != 0xFF:
            raise DicomLimitError(DAMAGED_IMAGE)
        pos += 2 + struct.unpack(">H", frame[pos + 2 : pos + 4])[0]
    # Tile-parts: Psot is the length of each, 0 for "up to the end marker".
    while frame[pos : pos + 2] == b"\xff\x90":
        if pos + 12 > end:
            raise DicomLimitError(DAMAGED_IMAGE)
        (psot,) = struct.unpack(">I", frame[pos + 6 : pos + 10])
        pos = end - 2 if psot == 0 else pos + psot
    if pos != end - 2:  # a cut codestream given an end marker: the chain does not meet it
        raise DicomLimitError(DAMAGED_IMAGE)


def _check_rle(frame: bytes, bits: int, samples: int) -> None:
    """RLE: the 64-byte header names one segment per byte plane, each inside the frame."""
    if len(frame) < 64:
        raise DicomLimitError(DAMAGED_IMAGE)
    count, *offsets = struct.unpack("<16I", frame[:64])
    expected = samples * max(-(-bits // 8), 1)
    used = offsets[:count]
    if (count != expected or used[0] != 64 or any(b <= a for a, b in pairwise(used))
            or used[-1] >= len(frame)):
        raise DicomLimitError(DAMAGED_IMAGE)


def check_frame(ds: object, syntax: str, rows: int, cols: int) -> bytes | None:
    """The encapsulated frame of ``ds`` matches its header and is whole, as far as can be
    seen without decoding it. For lossless JPEG, whose cut scans GDCM decodes with a
    warning only, the frame with filler before each scan's end: the caller decodes both and
    compares (as ``serving.preprocessing`` does for plain JPEGs)."""
    if syntax in NATIVE:
        return None  # pydicom checks the length of native pixel data against the header
    from pydicom.encaps import generate_frames

    get = ds.get  # type: ignore[attr-defined]
    bits = header_int(get("BitsAllocated"), "BitsAllocated", 8)
    samples = header_int(get("SamplesPerPixel"), "SamplesPerPixel", 1)
    try:
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))  # type: ignore[attr-defined]
    except (ValueError, StopIteration, struct.error, KeyError) as exc:
        raise DicomLimitError(DAMAGED_IMAGE) from exc
    if syntax in JPEG_8BIT or syntax in JPEG_LOSSLESS:
        return _check_jpeg(frame, syntax, rows, cols, bits)
    if syntax in JPEG_2000:
        _check_j2k(frame, rows, cols)
    elif syntax == RLE:
        _check_rle(frame, bits, samples)
    return None
