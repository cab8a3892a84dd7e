"""Small synthetic DICOM files for the tests, made with pydicom (no real patient data)."""

from __future__ import annotations

import io

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
