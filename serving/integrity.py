"""Strict structure checks of PNG and JPEG bytes, before and after Pillow decodes them.

Pillow (through libjpeg) decodes a JPEG that was cut short and given an end marker: the
missing part becomes flat grey, and the image would still get a diagnosis. These checks
refuse such files:

* :func:`check_png` walks the chunks: signature, every chunk whole with a correct CRC,
  ``IHDR`` first, ``IDAT`` present, ``IEND`` last; then inflates the image data (counting,
  not keeping it) and requires a complete zlib stream with every row of every pass: Pillow
  accepts a stream that ends early and leaves the missing rows black.
* :func:`jpeg_layout` walks the markers: every segment whole, one frame header, at least one
  scan, an end marker after the last scan and, for progressive files, scans that bring every
  coefficient of every component to full precision.
* :func:`with_scan_filler` is the "did the decoder use real data for the whole image" check:
  libjpeg zero-fills what a scan lacks when it meets a marker too early. Inserting filler
  bytes just before the marker that ends each scan changes nothing when every scan was
  complete (the decoder had finished before the marker and skips junk before a marker), and
  changes the decoded pixels when it was not (the filler is decoded instead of the grey
  fill). The caller decodes both and compares.

Standard library only; imported by :mod:`serving.preprocessing`.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Start-of-frame markers libjpeg decodes (Huffman: C0 baseline, C1 extended, C2 progressive;
# arithmetic: C9, CA). C3 (lossless) and the hierarchical ones are not supported by Pillow.
_SOF_SEQUENTIAL = {0xC0, 0xC1, 0xC9}
_SOF_PROGRESSIVE = {0xC2, 0xCA}
_SOF_UNSUPPORTED = {0xC3, 0xC5, 0xC6, 0xC7, 0xCB, 0xCD, 0xCE, 0xCF}
# Inside DICOM only (GDCM decodes them, Pillow does not): lossless (C3) and JPEG-LS (F7).
_SOF_LOSSLESS, _SOF_LS = 0xC3, 0xF7
_SOS, _EOI, _SOI = 0xDA, 0xD9, 0xD8
# Each scan of a progressive JPEG is a full pass over the image: 1,000 scans in 99 kB cost
# 12.7 s of CPU (issue 26). Encoders write 6 (greyscale) to about 20 (tuned colour) scans.
MAX_SCANS = 64
_RST = range(0xD0, 0xD8)
# No 0xFF (which would start a marker), varied bits so that a decoder fed with it produces
# values no zero-fill produces.
_FILLER = bytes(((i * 73 + 41) % 251) for i in range(2048))


class StructureError(ValueError):
    """The bytes are not a whole, well-formed file of their format (damaged or truncated)."""


class ScanLimitError(StructureError):
    """A JPEG with more scans than :data:`MAX_SCANS`; the message is meant for the user."""


def check_png(data: bytes) -> None:
    """Raise StructureError unless ``data`` is a PNG made of whole chunks with valid CRCs."""
    if not data.startswith(PNG_SIGNATURE):
        raise StructureError("no PNG signature")
    pos, first, ihdr, idat = len(PNG_SIGNATURE), True, b"", []
    while True:
        if pos + 12 > len(data):
            raise StructureError("the file ends inside a chunk (no IEND)")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(data):
            raise StructureError(f"chunk {kind!r} runs past the end of the file")
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            raise StructureError(f"chunk {kind!r} has a wrong CRC")
        if first and kind != b"IHDR":
            raise StructureError("the first chunk is not IHDR")
        first = False
        if kind == b"IHDR":
            ihdr = data[pos + 8 : end - 4]
        elif kind == b"IDAT":
            idat.append((pos + 8, end - 4))
        pos = end
        if kind == b"IEND":
            break
    if not idat:
        raise StructureError("no image data (IDAT)")
    _check_png_rows(data, ihdr, idat)


_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))


def png_raw_size(width: int, height: int, bits: int, colour: int, interlace: int) -> int:
    """Bytes of filtered scanlines a complete PNG image inflates to."""
    if colour not in _CHANNELS:
        raise StructureError(f"unknown PNG colour type {colour}")
    bpp = _CHANNELS[colour] * bits
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        pw, ph = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if pw > 0 and ph > 0:
            total += ph * (1 + -(-pw * bpp // 8))
    return total


def _check_png_rows(data: bytes, ihdr: bytes, idat: list[tuple[int, int]]) -> None:
    """Inflate the IDAT stream in bounded pieces and count: every row must be there."""
    if len(ihdr) != 13:
        raise StructureError("bad IHDR")
    width, height, bits, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", ihdr)
    expected = png_raw_size(width, height, bits, colour, interlace)
    inflater, produced = zlib.decompressobj(), 0
    try:
        for start, stop in idat:
            pending = data[start:stop]
            while pending and produced <= expected:
                produced += len(inflater.decompress(pending, 1 << 20))
                pending = inflater.unconsumed_tail
            if produced > expected:
                break
    except zlib.error as exc:
        raise StructureError(f"the image data does not inflate: {exc}") from exc
    if produced < expected or (produced == expected and not inflater.eof):
        raise StructureError(
            f"the image data ends early ({produced:,} of {expected:,} bytes of rows)"
        )


@dataclass
class JpegLayout:
    """Where the scans of a JPEG end, and what kind of frame it has."""

    progressive: bool = False
    ls: bool = False  # JPEG-LS
    components: list[int] = field(default_factory=list)
    scan_ends: list[int] = field(default_factory=list)  # offset of the marker ending each scan
    end: int = 0  # offset just after EOI
    height: int = 0  # from the frame header
    width: int = 0


def _scan_end(data: bytes, pos: int, ls: bool = False) -> int:
    """Offset of the first marker after entropy-coded data starting at ``pos``.

    ``ls``: JPEG-LS data, where 0xFF followed by a byte below 0x80 is data (bit stuffing).
    """
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            raise StructureError("the file ends inside a scan (no end marker)")
        nxt = data[pos + 1]
        if nxt == 0x00 or nxt in _RST or (ls and nxt < 0x80):  # stuffed byte, restart: data
            pos += 2
        elif nxt == 0xFF:  # fill byte before a marker
            pos += 1
        else:
            return pos


def jpeg_layout(data: bytes, lossless: bool = False) -> JpegLayout:
    """Walk the markers of a JPEG; StructureError when a part is missing or cut,
    ScanLimitError past :data:`MAX_SCANS` scans.

    ``lossless``: also accept lossless JPEG and JPEG-LS frames (DICOM frames GDCM decodes).
    """
    if not data.startswith(b"\xff\xd8"):
        raise StructureError("no JPEG start marker")
    layout = JpegLayout()
    # component id -> coefficients (0..63) already at full precision (progressive only)
    done: dict[int, set[int]] = {}
    pos, frame, scans = 2, False, 0
    while True:
        if pos + 2 > len(data):
            raise StructureError("the file ends before its end marker")
        if data[pos] != 0xFF:
            raise StructureError(f"expected a marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _EOI:
            layout.end = pos + 2
            break
        if marker in _RST or marker in (0x01, _SOI) or marker < 0xC0:
            # Outside a scan, only segment markers belong here; 0x02-0xBF are reserved.
            raise StructureError(f"unexpected marker 0x{marker:02X} at byte {pos}")
        if pos + 4 > len(data):
            raise StructureError("the file ends inside a segment header")
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        seg = data[pos + 4 : pos + 2 + length]
        if length < 2 or len(seg) != length - 2:
            raise StructureError(f"segment 0x{marker:02X} runs past the end of the file")
        extra = (_SOF_LOSSLESS, _SOF_LS) if lossless else ()
        if marker in _SOF_UNSUPPORTED and marker not in extra:
            raise StructureError(f"unsupported JPEG coding (marker 0x{marker:02X})")
        if marker in _SOF_SEQUENTIAL or marker in _SOF_PROGRESSIVE or marker in extra:
            if frame:
                raise StructureError("more than one frame header")
            if len(seg) < 6 or len(seg) < 6 + 3 * seg[5]:
                raise StructureError("short frame header")
            frame = True
            layout.progressive = marker in _SOF_PROGRESSIVE
            layout.ls = marker == _SOF_LS
            layout.height, layout.width = struct.unpack(">HH", seg[1:5])
            layout.components = [seg[6 + 3 * i] for i in range(seg[5])]
            done = {c: set() for c in layout.components}
        pos += 2 + length
        if marker == _SOS:
            if not frame:
                raise StructureError("a scan before the frame header")
            count = seg[0] if seg else 0
            if count < 1 or len(seg) < 1 + 2 * count + 3:
                raise StructureError("short scan header")
            ids = [seg[1 + 2 * i] for i in range(count)]
            ss, se, al = seg[1 + 2 * count], seg[2 + 2 * count], seg[3 + 2 * count] & 0x0F
            for cid in ids:
                if cid not in done:
                    raise StructureError("a scan names an unknown component")
                if al == 0 or not layout.progressive:
                    done[cid].update(range(ss, se + 1) if layout.progressive else range(64))
            scans += 1
            if scans > MAX_SCANS:
                raise ScanLimitError(
                    f"The JPEG has more than {MAX_SCANS} scans (progressive passes); an "
                    "X-ray needs far fewer. Save it again as a baseline JPEG or a PNG.")
            pos = _scan_end(data, pos, layout.ls)
            layout.scan_ends.append(pos)
    if not frame or scans == 0:
        raise StructureError("no frame header or no scan")
    missing = [c for c, coefs in done.items() if len(coefs) < 64]
    if missing:
        raise StructureError("scans are missing (the image was never completed)")
    return layout


def with_scan_filler(data: bytes, layout: JpegLayout) -> bytes:
    """``data`` up to EOI with filler bytes inserted before the marker that ends each scan."""
    parts, prev = [], 0
    for end in layout.scan_ends:
        parts += [data[prev:end], _FILLER]
        prev = end
    parts.append(data[prev : layout.end])
    return b"".join(parts)
