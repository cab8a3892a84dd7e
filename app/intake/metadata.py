"""Text metadata taken out of PNG and JPEG uploads before Radio stores them.

An exported X-ray can carry the patient's name and ID outside its pixels: PNG text chunks
(tEXt, iTXt, zTXt), EXIF (PNG eXIf, JPEG APP1), XMP (JPEG APP1), JPEG comments (COM) and
other application segments. What is stored is the upload with only what decoding and
display need:

* PNG: the chunks of :data:`PNG_KEEP` (image data, palette, transparency, colour space,
  pixel size, and tIME, the file's last-modification time, a fixed-size binary date that
  names nobody); every other chunk is dropped.
* JPEG: every segment but COM and APP1-APP15 (APP0, JFIF, stays; so does APP14, Adobe,
  which says how colours were transformed). An EXIF orientation other than "upright" is
  written back as a minimal EXIF holding that tag only, so the stored image shows the way
  the model saw it.

Called on bytes ``serving.preprocessing`` has accepted (their structure checked), from
``app.intake.intake``.
"""

from __future__ import annotations

import io
import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_KEEP = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM",
                      b"sRGB", b"sBIT", b"pHYs", b"bKGD", b"tIME"})
_APP0, _APP14, _APP1, _APP15, _COM, _SOS = 0xE0, 0xEE, 0xE1, 0xEF, 0xFE, 0xDA
_ORIENTATION = 0x0112


def strip(data: bytes, fmt: str) -> bytes:
    """``data`` (PNG or JPEG) without its text metadata."""
    return _strip_png(data) if fmt == "PNG" else _strip_jpeg(data)


def _strip_png(data: bytes) -> bytes:
    parts, pos = [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if kind in PNG_KEEP:
            parts.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    return b"".join(parts)


def _orientation(data: bytes) -> int:
    from PIL import Image

    try:
        return int(Image.open(io.BytesIO(data)).getexif().get(_ORIENTATION, 1))
    except (OSError, ValueError, SyntaxError, TypeError):
        return 1


def _exif_segment(orientation: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[_ORIENTATION] = orientation
    body = b"Exif\x00\x00" + exif.tobytes()
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def _strip_jpeg(data: bytes) -> bytes:
    orientation = _orientation(data)
    parts, pos = [data[:2]], 2  # SOI
    if orientation != 1:
        parts.append(_exif_segment(orientation))
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _SOS:  # the scans and what follows: image data, kept whole
            parts.append(data[pos:])
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if not (marker == _COM or (_APP1 <= marker <= _APP15 and marker != _APP14)):
            parts.append(data[pos:end])
        pos = end
    return b"".join(parts)
