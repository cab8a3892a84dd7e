"""The bad-input corpus: every hostile or broken upload Radio must refuse, with the status
and the words of the message it must answer.

``cases()`` builds them on the fly (nothing binary is committed); real val X-rays from
../shared/data are cut and damaged when present, synthetic images otherwise.
``python tests/corpus.py DIR`` writes each case's body to DIR with ``expected.json``, for
trying them by hand (``curl -F file=@DIR/<case> ...``). ``tests/app/intake/test_corpus.py`` sends
every case to a real gunicorn; ``tests/app/datasets/test_datasets.py`` sends the file cases to
``POST /contribute``, which must answer the same statuses. The hostile DICOMs (issue 26)
are made with pydicom (``tests/dicom_files.py``).
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import helpers
import numpy as np
from PIL import Image

DAMAGED = "damaged or truncated"
NOT_IMAGE = "not a PNG or JPEG"
PIXELS = "too many pixels"
MULTIPART = "multipart/form-data"


@dataclass
class Case:
    """One request to POST /predict and what Radio must answer."""

    name: str
    status: int
    words: str  # must appear in the "error" message
    file: bytes | None = None  # sent as the multipart field "file" (filename x.png)
    body: bytes | None = None  # or this raw body...
    content_type: str = ""  # ...with this Content-Type
    headers: dict[str, str] = field(default_factory=dict)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _xray_like(side: int = 512) -> Image.Image:
    real = helpers.first_val_xray()
    if real is not None:
        return Image.open(real).convert("L").resize((side, side))
    ramp = np.add.outer(np.arange(side), np.arange(side)) % 256
    return Image.fromarray(ramp.astype(np.uint8))


def _png(side: int, bits: int = 8, colour: int = 0) -> bytes:
    return helpers.bomb_png(side, bits=bits, colour=colour)


def _multipart(parts: list[tuple[bytes, bytes]]) -> tuple[bytes, str]:
    body = b"".join(b"--XB\r\nContent-Disposition: form-data; " + head + b"\r\n\r\n"
                    + content + b"\r\n" for head, content in parts) + b"--XB--\r\n"
    return body, "multipart/form-data; boundary=XB"


def _image_cases() -> list[Case]:
    xray = _xray_like()
    jpeg, png = _encode(xray, "JPEG", quality=90), _encode(xray, "PNG")
    prog = _encode(xray, "JPEG", quality=90, progressive=True)
    iend = helpers.png_chunk(b"IEND", b"")
    cases = [
        Case("empty file", 400, "empty", file=b""),
        Case("text renamed .png", 415, NOT_IMAGE, file=b"Patient notes\n" * 20),
        Case("HTML", 415, NOT_IMAGE, file=b"<html><script>alert(1)</script></html>"),
        Case("SVG", 415, NOT_IMAGE, file=b'<svg xmlns="http://www.w3.org/2000/svg"/>'),
        Case("PDF", 415, NOT_IMAGE, file=b"%PDF-1.7\n" + bytes(200)),
        Case("GIF", 415, NOT_IMAGE, file=_encode(xray, "GIF")),
        Case("BMP", 415, NOT_IMAGE, file=_encode(xray, "BMP")),
        Case("TIFF", 415, NOT_IMAGE, file=_encode(xray, "TIFF")),
        Case("WebP", 415, NOT_IMAGE, file=_encode(xray, "WEBP")),
        Case("ZIP", 415, NOT_IMAGE, file=b"PK\x03\x04" + bytes(100)),
        Case("ELF executable", 415, NOT_IMAGE, file=b"\x7fELF" + bytes(100)),
        # A DICOM preamble and nothing usable: read as DICOM (issue 14), refused as one.
        Case("DICOM preamble", 422, "DICOM", file=bytes(128) + b"DICM" + bytes(100)),
        Case("PNG magic only", 400, DAMAGED, file=b"\x89PNG\r\n\x1a\n"),
        Case("PNG magic + zeros", 400, DAMAGED, file=b"\x89PNG\r\n\x1a\n" + bytes(64)),
        Case("JPEG magic only", 400, DAMAGED, file=b"\xff\xd8\xff"),
        Case("JPEG magic + zeros", 400, DAMAGED, file=b"\xff\xd8\xff\xe0" + bytes(64)),
        Case("JPEG SOI+EOI only", 400, DAMAGED, file=b"\xff\xd8\xff\xd9"),
        Case("PNG random after header", 400, DAMAGED,
             file=png[:33] + np.random.default_rng(1).bytes(2000)),
        Case("JPEG random after header", 400, DAMAGED,
             file=jpeg[:600] + np.random.default_rng(2).bytes(2000)),
    ]
    for frac in (0.1, 0.3, 0.6, 0.8, 0.95, 0.99):
        cut_j, cut_p = jpeg[: int(len(jpeg) * frac)], png[: int(len(png) * frac)]
        cases += [
            Case(f"JPEG cut at {frac:.0%}", 400, DAMAGED, file=cut_j),
            Case(f"JPEG cut at {frac:.0%} + end marker", 400, DAMAGED, file=cut_j + b"\xff\xd9"),
            Case(f"PNG cut at {frac:.0%}", 400, DAMAGED, file=cut_p),
            Case(f"PNG cut at {frac:.0%} + IEND", 400, DAMAGED, file=cut_p + iend),
        ]
    cases += [
        Case("progressive JPEG cut at 50% + end marker", 400, DAMAGED,
             file=prog[: len(prog) // 2] + b"\xff\xd9"),
        Case("progressive JPEG cut at 97% + end marker", 400, DAMAGED,
             file=prog[: int(len(prog) * 0.97)] + b"\xff\xd9"),
        Case("JPEG with a reserved marker (flipped byte)", 400, DAMAGED,
             file=jpeg[:2] + b"\xff\x00" + jpeg[4:]),
        Case("PNG with a flipped pixel byte (CRC)", 400, DAMAGED, file=_flip(png)),
        Case("PNG with a short zlib stream", 400, DAMAGED, file=_short_png()),
        Case("JPEG 7000x7000 header, 1 kB of data", 400, DAMAGED, file=_big_header_jpeg()),
        Case("1x1 PNG", 400, "too small", file=_encode(Image.new("L", (1, 1)), "PNG")),
        Case("16x16 JPEG", 400, "too small", file=_encode(Image.new("L", (16, 16)), "JPEG")),
        Case("1-bit 20000x20000 bomb", 400, PIXELS, file=helpers.bomb_png(20000)),
        Case("8-bit 10000x10000 PNG", 400, "pixels", file=_png(10000)),
        Case("RGBA 7000x7000 PNG", 400, PIXELS, file=_png(7000, 8, 6)),
        Case("RGB 6000x6000 PNG", 400, PIXELS, file=_png(6000, 8, 2)),
        Case("PNG header 100000x100000", 400, "pixels", file=_header_only_png(100000)),
        Case("PNG header 0x0", 400, DAMAGED, file=_header_only_png(0)),
        Case("progressive JPEG with 100 scans", 400, "scans", file=_scan_bomb(100)),
    ]
    return cases + _dicom_cases()


def _flip(png: bytes) -> bytes:
    data = bytearray(png)
    data[data.index(b"IDAT") + 10] ^= 0xFF
    return bytes(data)


def _short_png() -> bytes:
    raw = b"".join(b"\x00" + bytes([r]) * 64 for r in range(32))
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + helpers.png_chunk(b"IHDR", ihdr)
            + helpers.png_chunk(b"IDAT", zlib.compress(raw)) + helpers.png_chunk(b"IEND", b""))


def _header_only_png(side: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + helpers.png_chunk(b"IHDR", ihdr)
            + helpers.png_chunk(b"IEND", b""))


def _big_header_jpeg() -> bytes:
    small = _encode(Image.new("L", (64, 64), 128), "JPEG")
    sof = small.index(b"\xff\xc0")
    # Patch the frame size (height, width at SOF+5..+9) to 7000x7000.
    head = small[: sof + 5] + struct.pack(">HH", 7000, 7000) + small[sof + 9 :]
    sos = head.index(b"\xff\xda")
    length = struct.unpack(">H", head[sos + 2 : sos + 4])[0]
    scan = head[: sos + 2 + length]
    return scan + np.random.default_rng(3).bytes(1024).replace(b"\xff", b"\x00") + b"\xff\xd9"


def _scan_bomb(scans: int = 100) -> bytes:
    """A progressive JPEG whose first scan is repeated: ``scans`` scans in a few kB (each is
    a full pass over the image for the decoder)."""
    prog = _encode(_xray_like(256), "JPEG", quality=80, progressive=True)
    first = prog.index(b"\xff\xda")
    second = prog.index(b"\xff\xda", first + 2)
    return prog[:first] + prog[first:second] * scans + prog[second:]


def _dicom_cases() -> list[Case]:
    """Hostile and wrong DICOMs (issue 26): each refused before any decompression, with its
    status and message."""
    import tempfile

    import dicom_files as d
    from pydicom import dcmread
    from pydicom.encaps import generate_frames

    with tempfile.TemporaryDirectory() as tmp:
        lossless = d.transcode(d.make(d.radiograph()), "JPEGLosslessProcess14_1", Path(tmp))
    frame = next(generate_frames(dcmread(io.BytesIO(lossless)).PixelData, number_of_frames=1))
    cases = [
        Case("DICOM deflate bomb (100 MB)", 400, PIXELS, file=d.deflate_bomb(100)),
        Case("DICOM false deflate", 400, "not deflate-compressed", file=d.false_deflate()),
        Case("DICOM RLE bomb 7000x7000 16-bit", 400, PIXELS, file=d.rle_bomb(7000)),
        Case("DICOM JPEG 2000 declaring 60000x60000", 400, "header says",
             file=d.jpeg2000(64, declared=60000)),
        Case("DICOM JPEG 2000 header 30000x30000", 400, "pixels",
             file=d.encapsulated(b"\xff\x4f\xff\x51" + bytes(60), d.JPEG_2000, 30000,
                                 30000)),
        Case("DICOM JPEG-LS declaring 60000x60000", 400, "header says",
             file=d.jpeg_ls(64, 60000)),
        Case("DICOM JPEG 2000 cut at 60% + end marker", 400, DAMAGED,
             file=d.jpeg2000(256, cut=0.6)),
        Case("DICOM false syntax (JPEG, native data)", 400, DAMAGED,
             file=d.relabelled(d.with_header(), d.JPEG_BASELINE)),
        Case("DICOM unknown transfer syntax", 415, "cannot decode",
             file=d.relabelled(d.with_header(), "1.2.3.4.5.6")),
        Case("DICOM sequences nested 3000 deep", 400, "nested", file=d.nested(3000)),
        Case("DICOM PALETTE COLOR without a table", 422, "greyscale",
             file=d.with_header(PhotometricInterpretation="PALETTE COLOR")),
        Case("DICOM no ViewPosition, lateral orientation", 422, "lateral",
             file=d.with_header(ViewPosition="", PatientOrientation=["A", "F"])),
    ]
    for cut in (0.3, 0.5, 0.8):
        cases += [
            Case(f"DICOM JPEG cut at {cut:.0%} + end marker", 400, DAMAGED,
                 file=d.jpeg_frame(cut=cut)),
            Case(f"DICOM JPEG Lossless cut at {cut:.0%} + end marker", 400, DAMAGED,
                 file=d.encapsulated(frame[: int(len(frame) * cut)] + b"\xff\xd9",
                                     d.JPEG_LOSSLESS, 300, 260)),
        ]
    # Every lateral and oblique View Position of the standard, and the free text exporters
    # write.
    for view in ("LL", "RL", "LLD", "RLD", "RLO", "LLO", "LATERAL", "XTABLE LATERAL",
                 "LATERAL DECUBITUS"):
        cases.append(Case(f"DICOM ViewPosition {view}", 422, "lateral",
                          file=d.with_header(ViewPosition=view)))
    return cases


def _request_cases(max_mb: int) -> list[Case]:
    good = _encode(_xray_like(), "PNG")
    two, two_ct = _multipart([(b'name="file"; filename="a.png"', good),
                              (b'name="file"; filename="b.png"', good)])
    latin1, latin1_ct = _multipart([(b'name="file"; filename="R\xf6ntgen.png"', good)])
    fields, fields_ct = _multipart([(b'name="f%d"' % i, b"x") for i in range(5000)])
    other, other_ct = _multipart([(b'name="image"; filename="a.png"', good)])
    no_name, no_name_ct = _multipart([(b'name="file"', b"")])
    return [
        Case("no field 'file'", 400, "No file was uploaded", body=other, content_type=other_ct),
        Case("empty multipart", 400, "No file was uploaded", body=b"--XB--\r\n",
             content_type="multipart/form-data; boundary=XB"),
        Case("field 'file' without a file name", 400, "No file was uploaded", body=no_name,
             content_type=no_name_ct),
        Case("two files in 'file'", 400, "send one image per request", body=two,
             content_type=two_ct),
        Case("non-UTF-8 file name", 400, "not UTF-8", body=latin1, content_type=latin1_ct),
        Case("5000 form fields", 400, "too many fields", body=fields, content_type=fields_ct),
        Case("multipart without boundary", 400, "multipart", body=b"abc",
             content_type="multipart/form-data"),
        Case("JSON body", 415, MULTIPART, body=b'{"image": "..."}',
             content_type="application/json"),
        Case("raw PNG body", 415, MULTIPART, body=good, content_type="image/png"),
        Case("urlencoded form", 415, MULTIPART, body=b"file=abc",
             content_type="application/x-www-form-urlencoded"),
        Case("no Content-Type", 415, MULTIPART, body=good, content_type=""),
        Case("file over the size limit", 413, f"the limit is {max_mb} MB",
             file=b"\x89PNG\r\n\x1a\n" + bytes(max_mb * 2**20 + 1)),
    ]


def file_cases() -> list[Case]:
    """The cases that are one uploaded file (every image and DICOM case): any route that
    takes an image must answer them alike."""
    return _image_cases()


def cases(max_mb: int = 5) -> list[Case]:
    """Every case; ``max_mb`` is the server's RADIO_MAX_UPLOAD_MB."""
    return _image_cases() + _request_cases(max_mb)


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    expected = {}
    for i, case in enumerate(cases()):
        name = f"{i:02d}"
        (out / name).write_bytes(case.file if case.file is not None else case.body or b"")
        expected[name] = {"case": case.name, "status": case.status, "words": case.words,
                          "as": "file" if case.file is not None else case.content_type}
    (out / "expected.json").write_text(json.dumps(expected, indent=1))
    print(f"{len(expected)} cases in {out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main(Path(sys.argv[1])))
