"""DICOM uploads: check it is a frontal chest radiograph, de-identify, render to greyscale.

The upload is parsed in memory and never written anywhere as received: only the
de-identified copy (``app.deid``) leaves this module. Its pixels go through the display
pipeline a radiologist's viewer applies (modality LUT, VOI LUT or window, MONOCHROME1
inversion) to an 8-bit image, and then through the same ``serving.preprocessing`` resize
as PNG and JPEG uploads. 16-bit images without a window are stretched from their minimum
to their maximum exactly like a 16-bit PNG, so both give the same model input.

Decoders: uncompressed and RLE natively (pydicom + NumPy); JPEG baseline/extended, JPEG
Lossless (the usual CR/DX export), JPEG-LS and JPEG 2000 through GDCM (python-gdcm) or
Pillow. Another transfer syntax (video, ...) gets a 415 naming it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from app.errors import APIError
from serving.preprocessing import MAX_PIXELS, to_array, to_greyscale

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
# pydicom (and GDCM through it) is imported by the functions that read DICOM, not here:
# at import it costs each gunicorn worker ~30 MB that only DICOM uploads need.

# Computed and digital radiography, and the "digital X-ray" some exporters write.
MODALITIES = ("CR", "DX", "DR")
FRONTAL = ("PA", "AP", "")
LATERAL = ("LL", "RL", "LATERAL", "LAT", "RLD", "LLD")


def is_dicom(data: bytes) -> bool:
    """A DICOM Part 10 file: 128-byte preamble then ``DICM``."""
    return len(data) > 132 and data[128:132] == b"DICM"


def _refuse(status: int, message: str, request_id: str | None) -> APIError:
    return APIError(status, message, request_id)


def _check(ds: Dataset, request_id: str | None) -> None:
    modality = str(ds.get("Modality", "")).upper()
    if modality not in MODALITIES:
        raise _refuse(422, f"This DICOM is not a radiograph (modality {modality or 'missing'}); "
                      "Radio reads chest X-rays (modality CR or DX).", request_id)
    body = str(ds.get("BodyPartExamined", "")).upper()
    if body and body not in ("CHEST", "THORAX", "LUNG"):
        raise _refuse(422, f"This DICOM shows the {body.lower()}, not the chest.", request_id)
    view = str(ds.get("ViewPosition", "")).upper()
    if view in LATERAL:
        raise _refuse(422, "This is a lateral view, not a frontal chest X-ray; Radio reads "
                      "frontal (PA or AP) views only.", request_id)
    if "PixelData" not in ds:
        raise _refuse(422, "This DICOM has no image in it.", request_id)
    if int(ds.get("NumberOfFrames", 1) or 1) > 1 or int(ds.get("SamplesPerPixel", 1)) != 1:
        raise _refuse(422, "This DICOM is not a single greyscale X-ray image.", request_id)
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        raise _refuse(422, "This DICOM says patient details are burned into the image; Radio "
                      "cannot de-identify it. Export it without annotations.", request_id)
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    if rows * cols > MAX_PIXELS:
        raise _refuse(400, f"The image is {cols}x{rows} pixels; the limit is "
                      f"{MAX_PIXELS:,} pixels.", request_id)
    if rows < 32 or cols < 32:
        raise _refuse(400, f"The image is only {cols}x{rows} pixels; too small to read.",
                      request_id)


def _has_voi(ds: Dataset) -> bool:
    return "WindowCenter" in ds or "VOILUTSequence" in ds


def to_display(ds: Dataset) -> Image.Image:
    """The 8-bit greyscale image a viewer would show (MONOCHROME2: white = dense)."""
    raw = ds.pixel_array
    inverted = str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1"
    simple = raw.dtype == np.uint8 and not _has_voi(ds) and "RescaleSlope" not in ds
    if simple:  # an 8-bit image needs no stretching: same as an 8-bit PNG
        arr8 = 255 - raw if inverted else raw
        return Image.fromarray(np.ascontiguousarray(arr8))
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    arr = apply_modality_lut(raw, ds).astype(np.float32)
    if _has_voi(ds):
        arr = apply_voi_lut(arr, ds).astype(np.float32)
    if inverted:
        arr = float(arr.max()) + float(arr.min()) - arr
    # Same min-max stretch as a 16-bit PNG gets in serving.preprocessing.
    return to_greyscale(Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32)))


def patient_key(patient_id: str, key: bytes) -> str:
    """A keyed hash of a DICOM PatientID: the same patient gives the same key within one
    deployment (data drift permutes a patient's films together), and without ``key`` (the
    app's secret) no one can test a guessed ID against it."""
    return hmac.new(key, patient_id.encode(), hashlib.sha256).hexdigest()[:24]


def _source(ds: Dataset, key: bytes | None = None) -> dict[str, str]:
    source = {
        "institution": str(ds.get("InstitutionName", "")),
        "manufacturer": str(ds.get("Manufacturer", "")),
        "view": str(ds.get("ViewPosition", "")),
        "modality": str(ds.get("Modality", "")),
    }
    patient = str(ds.get("PatientID", "")).strip()
    if key and patient:
        source["patient"] = patient_key(patient, key)
    return source


def load(data: bytes, request_id: str | None = None, key: bytes | None = None,
         ) -> tuple[bytes, np.ndarray, dict[str, Any]]:
    """``(de-identified DICOM bytes, model input array, source)`` of an uploaded DICOM.

    With ``key``, the source keeps the PatientID's keyed hash (:func:`patient_key`) as
    ``patient``; the PatientID itself is removed with the rest.

    APIError 400 (damaged), 415 (undecodable compression), 422 (not a frontal chest X-ray).
    """
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    from app import deid

    try:
        ds = dcmread(io.BytesIO(data))
    except (InvalidDicomError, ValueError, EOFError, OSError, KeyError) as exc:
        raise _refuse(400, "The DICOM file is damaged and cannot be read.", request_id) from exc
    _check(ds, request_id)
    try:
        image = to_display(ds)
    except (NotImplementedError, RuntimeError) as exc:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", str(syntax))
        raise _refuse(415, f"Radio cannot decode this DICOM's compression ({name}); export "
                      "it uncompressed or as JPEG.", request_id) from exc
    except (ValueError, TypeError, AttributeError, EOFError) as exc:
        raise _refuse(400, "The DICOM image data is damaged and cannot be decoded.",
                      request_id) from exc
    source = _source(ds, key)
    deid.deidentify(ds)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), to_array(image), source


def display_png(data: bytes) -> bytes:
    """A stored (de-identified) DICOM as the PNG a browser can show."""
    from pydicom import dcmread

    buf = io.BytesIO()
    to_display(dcmread(io.BytesIO(data))).save(buf, format="PNG")
    return buf.getvalue()
