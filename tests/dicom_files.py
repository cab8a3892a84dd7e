"""Small synthetic DICOM files for the tests, made with pydicom (no real patient data)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

# Identifying values the de-identification must remove; each is searched for in the output.
PHI = {
    "PatientName": "Doe^Jane",
    "PatientID": "MRN123456",
    "PatientBirthDate": "19570302",
    "ReferringPhysicianName": "House^Gregory",
    "AccessionNumber": "ACC998877",
    "StudyDate": "20260101",
    "InstitutionAddress": "1 Hospital Road",
    "StationName": "XRAYROOM7",
}
DX_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation


def make(pixels: np.ndarray, *, photometric: str = "MONOCHROME2", modality: str = "DX",
         view: str = "PA", body: str = "CHEST", extra: dict | None = None) -> bytes:
    """A DICOM Part 10 file of ``pixels`` (uint8 or uint16) with PHI in the usual places."""
    ds = Dataset()
    for key, value in PHI.items():
        setattr(ds, key, value)
    ds.SOPClassUID = DX_CLASS
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.ViewPosition = view
    ds.BodyPartExamined = body
    ds.InstitutionName = "St Example Hospital"
    ds.Manufacturer = "Acme Imaging"
    bits = 8 if pixels.dtype == np.uint8 else 16
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.add_new((0x0011, 0x0010), "LO", "ACME private")
    ds.add_new((0x0011, 0x1001), "LO", "Jane Doe secret note")
    for key, value in (extra or {}).items():
        setattr(ds, key, value)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_CLASS
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def transcode(data: bytes, syntax: str, tmp) -> bytes:
    """``data`` re-encoded by GDCM (``syntax``: a gdcm.TransferSyntax name, e.g.
    ``JPEGLosslessProcess14_1`` or ``JPEGLSLossless``)."""
    import gdcm

    src, dst = tmp / "in.dcm", tmp / "out.dcm"
    src.write_bytes(data)
    reader = gdcm.ImageReader()
    reader.SetFileName(str(src))
    assert reader.Read()
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax, syntax)))
    change.SetInput(reader.GetImage())
    assert change.Change()
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(dst))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    assert writer.Write()
    return dst.read_bytes()


def uids_of(data: bytes) -> list[str]:
    """The instance UIDs written in a DICOM file (to check none survives)."""
    from pydicom import dcmread

    ds = dcmread(io.BytesIO(data))
    return [str(ds.SOPInstanceUID), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)]


def radiograph(height: int = 300, width: int = 260, seed: int = 0) -> np.ndarray:
    """A smooth uint16 test image using most of the 16-bit range (not an X-ray)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = 20000 + 15000 * np.sin(x / 40.0) * np.cos(y / 55.0) + rng.normal(0, 800, (height, width))
    return np.clip(base, 1000, 60000).astype(np.uint16)


# Hostile DICOMs (issue 26): small files whose header, compressed frame or structure would
# cost a decoder far more than they weigh. Each is refused before decoding.
DEFLATED = "1.2.840.10008.1.2.1.99"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"
JPEG_LS = "1.2.840.10008.1.2.4.80"
JPEG_2000 = "1.2.840.10008.1.2.4.90"
RLE = "1.2.840.10008.1.2.5"


def _header(rows: int, cols: int, bits: int = 16, **extra) -> Dataset:
    """The dataset of a small DX chest image, header only (no PixelData yet)."""
    ds = Dataset()
    ds.SOPClassUID = DX_CLASS
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality, ds.ViewPosition, ds.BodyPartExamined = "DX", "PA", "CHEST"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit, ds.PixelRepresentation = bits - 1, 0
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def _file(ds: Dataset, syntax: str, encapsulated: bool) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_CLASS
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    ds.file_meta = meta
    if encapsulated:
        ds["PixelData"].VR = "OB"
    buf = io.BytesIO()
    # The syntax may be false on purpose: write as explicit VR little endian whatever it says.
    ds.save_as(buf, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return buf.getvalue()


def encapsulated(frame: bytes, syntax: str, rows: int, cols: int, bits: int = 16) -> bytes:
    """A DICOM whose one frame is ``frame`` (compressed as ``syntax`` says)."""
    from pydicom.encaps import encapsulate

    ds = _header(rows, cols, bits)
    ds.PixelData = encapsulate([frame])
    return _file(ds, syntax, encapsulated=True)


def deflate_bomb(inflated_mb: int = 200) -> bytes:
    """A deflated DICOM of ~200 kB whose dataset inflates to ``inflated_mb`` MB of zeros."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    side = int((inflated_mb * 2**20 // 2) ** 0.5)
    ds = _header(side, side)
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    write_dataset(head, ds)
    length = side * side * 2
    pixel_header = b"\xe0\x7f\x10\x00OW\x00\x00" + length.to_bytes(4, "little")
    comp = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = [comp.compress(head.getvalue() + pixel_header)]
    zeros = bytes(2**20)
    for _ in range(length // len(zeros)):
        body.append(comp.compress(zeros))
    body += [comp.compress(bytes(length % len(zeros))), comp.flush()]
    meta_only = _file(_header(32, 32), DEFLATED, encapsulated=False)
    ds_start = _meta_end(meta_only)
    return meta_only[:ds_start] + b"".join(body)


def relabelled(data: bytes, syntax: str) -> bytes:
    """``data`` (explicit VR little endian) with its file meta naming another syntax, the
    dataset left as it is: a false transfer syntax."""
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    meta = dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta
    meta.TransferSyntaxUID = syntax
    buf = DicomBytesIO()
    buf.write(bytes(128) + b"DICM")
    write_file_meta_info(buf, meta, enforce_standard=False)
    return buf.getvalue() + data[_meta_end(data):]


def false_deflate() -> bytes:
    """Says Deflated Explicit VR Little Endian; its dataset is not deflate-compressed."""
    return relabelled(with_header(), DEFLATED)


def _meta_end(data: bytes) -> int:
    """Offset of the dataset after the file meta group of a Part 10 file."""
    group_length = int.from_bytes(data[140:144], "little")  # (0002,0000) UL, after 132+8
    return 144 + group_length


def rle_bomb(side: int = 7000) -> bytes:
    """RLE 16-bit ``side`` x ``side`` of zeros: two byte planes of 128-byte repeat runs."""
    full, rest = divmod(side * side, 128)
    plane = b"\x81\x00" * full + (bytes([(257 - rest) & 0xFF, 0]) if rest else b"")
    header = struct.pack("<16I", 2, 64, 64 + len(plane), *([0] * 13))
    return encapsulated(header + plane + plane, RLE, side, side)


def jpeg2000(side: int = 64, declared: int | None = None, cut: float | None = None) -> bytes:
    """A JPEG 2000 DICOM (8-bit), its codestream declaring ``declared`` pixels a side, or cut
    at ``cut`` of its length and given an end marker."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((radiograph(side, side) >> 8).astype(np.uint8)).save(
        buf, format="JPEG2000", irreversible=False)
    code = buf.getvalue()
    siz = code.index(b"\xff\x51")
    if declared is not None:
        code = code[: siz + 6] + struct.pack(">II", declared, declared) + code[siz + 14 :]
    if cut is not None:
        code = code[: int(len(code) * cut)] + b"\xff\xd9"
    return encapsulated(code, JPEG_2000, side, side, bits=8)


def jpeg_frame(side: int = 256, cut: float | None = None) -> bytes:
    """A baseline 8-bit JPEG DICOM, optionally cut at ``cut`` and given an end marker."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((radiograph(side, side) >> 8).astype(np.uint8)).save(
        buf, format="JPEG", quality=90)
    code = buf.getvalue()
    if cut is not None:
        code = code[: int(len(code) * cut)] + b"\xff\xd9"
    return encapsulated(code, JPEG_BASELINE, side, side, bits=8)


def jpeg_ls(side: int = 64, declared: int | None = None) -> bytes:
    """A minimal JPEG-LS frame whose SOF55 declares ``declared`` pixels a side."""
    size = declared or side
    sof = b"\xff\xf7" + struct.pack(">HBHHB", 11, 8, size, size, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00" + b"\x00\x00\x00"
    code = b"\xff\xd8" + sof + sos + bytes(64) + b"\xff\xd9"
    return encapsulated(code, JPEG_LS, side, side, bits=8)


def nested(depth: int = 3000) -> bytes:
    """A DICOM whose sequences nest ``depth`` deep (undefined lengths), then pixels."""
    item_start, item_end = b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    seq_start = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff"  # ReferencedSeriesSequence
    seq_end = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    ds = _header(64, 64)
    ds.PixelData = bytes(64 * 64 * 2)
    plain = _file(ds, "1.2.840.10008.1.2.1", encapsulated=False)
    start = _meta_end(plain)
    deep = (seq_start + item_start) * depth + (item_end + seq_end) * depth
    # (0008,1115) sorts after (0008,0060) Modality... put it first: order is not checked.
    return plain[:start] + deep + plain[start:]


def with_header(**attrs) -> bytes:
    """An uncompressed 64 x 64 16-bit chest DICOM with these attributes set (None: removed)."""
    ds = _header(64, 64)
    ds.PixelData = radiograph(64, 64).tobytes()
    for key, value in attrs.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    return _file(ds, "1.2.840.10008.1.2.1", encapsulated=False)
