"""DICOM uploads: check it is a frontal chest radiograph, de-identify, render to greyscale.

The upload is parsed in memory and never written anywhere as received: only the
de-identified copy (``app.intake.deid``) leaves this module. Its pixels go through the display
pipeline a radiologist's viewer applies (modality LUT, VOI LUT or window, MONOCHROME1
inversion) to an 8-bit image, and then through the same ``serving.preprocessing`` resize
as PNG and JPEG uploads. 16-bit images without a window are stretched from their minimum
to their maximum exactly like a 16-bit PNG, so both give the same model input.

Decoders: uncompressed and RLE natively (pydicom + NumPy); JPEG baseline/extended, JPEG
Lossless (the usual CR/DX export), JPEG-LS and JPEG 2000 through GDCM (python-gdcm) or
Pillow. Another transfer syntax (video, ...) is refused as a format Radio cannot decode,
named.

Nothing is decompressed before ``app.intake.dicom_limits`` has checked the header's pixel and byte
budget and the compressed frame (issue 26); the display pipeline then works in bands of
rows, so a decode holds the decoded frame and one 8-bit copy. The display image is rendered
once, at intake, to a PNG of at most :data:`RENDER_SIDE` pixels a side that is stored beside
the DICOM and served to browsers: a stored DICOM is never decoded again to be shown.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import struct
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from PIL import Image

from app.intake import dicom_limits
from app.platform.failures import Malformed, NotAccepted, UnsupportedFormat
from serving.preprocessing import to_array

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
# pydicom (and GDCM through it) is imported by the functions that read DICOM, not here:
# at import it costs each gunicorn worker ~30 MB that only DICOM uploads need.

# Computed and digital radiography, and the "digital X-ray" some exporters write.
MODALITIES = ("CR", "DX", "DR")
FRONTAL = ("PA", "AP", "")
# Every lateral and oblique View Position of the standard (PS3.3 C.8.11.5.1.1 and the CID
# 4010 terms exporters write), and abbreviations seen in the field: none is a frontal view.
LATERAL = ("LL", "RL", "LATERAL", "LAT", "RLD", "LLD", "RLO", "LLO", "XTABLE LATERAL",
           "LATERAL DECUBITUS", "LEFT LATERAL", "RIGHT LATERAL", "LL DECUBITUS",
           "RL DECUBITUS", "LAO", "RAO", "LPO", "RPO", "OBLIQUE", "LO", "RO")
GREYSCALE = ("MONOCHROME1", "MONOCHROME2")
# The stored rendering a browser is shown: at most this many pixels a side.
RENDER_SIDE = 2048
# Pixels of the display pipeline at once: 1 MP of float32 (4 MB) per temporary.
BAND_PIXELS = 1_000_000


class Loaded(NamedTuple):
    """An accepted DICOM: what is stored, what the model gets, where it came from, and the
    PNG browsers are shown."""

    clean: bytes  # the de-identified DICOM
    image: np.ndarray  # the model input
    source: dict[str, str]
    rendering: bytes  # PNG, at most RENDER_SIDE a side


def is_dicom(data: bytes) -> bool:
    """A DICOM Part 10 file: 128-byte preamble then ``DICM``."""
    return len(data) > 132 and data[128:132] == b"DICM"


def _is_lateral(ds: Dataset) -> bool:
    """A lateral or oblique view: by View Position, or, without one, by the patient
    orientation (a frontal view's rows run left/right: L or R; a lateral's anterior or
    posterior: A or P)."""
    view = " ".join(str(ds.get("ViewPosition", "")).upper().split())
    if view in LATERAL or "LAT" in view or "DECUB" in view or "OBL" in view:
        return True
    if view:
        return False
    orientation = ds.get("PatientOrientation")
    values = list(orientation) if orientation is not None and not isinstance(
        orientation, str) else str(orientation or "").split("\\")
    first = str(values[0]).upper() if values and values[0] else ""
    return bool(first) and first[0] in ("A", "P")


def _check(ds: Dataset, request_id: str | None) -> None:
    modality = str(ds.get("Modality", "")).upper()
    if modality not in MODALITIES:
        raise NotAccepted(f"This DICOM is not a radiograph (modality {modality or 'missing'}); "
                          "Radio reads chest X-rays (modality CR or DX).", request_id)
    body = str(ds.get("BodyPartExamined", "")).upper()
    if body and body not in ("CHEST", "THORAX", "LUNG"):
        raise NotAccepted(f"This DICOM shows the {body.lower()}, not the chest.", request_id)
    if _is_lateral(ds):
        raise NotAccepted("This is a lateral view, not a frontal chest X-ray; Radio reads "
                          "frontal (PA or AP) views only.", request_id)
    if "PixelData" not in ds:
        raise NotAccepted("This DICOM has no image in it.", request_id)
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    number = dicom_limits.header_int
    if (number(ds.get("NumberOfFrames"), "NumberOfFrames", 1) > 1
            or number(ds.get("SamplesPerPixel"), "SamplesPerPixel", 1) != 1
            or photometric not in GREYSCALE):
        # PALETTE COLOR (with or without its table), RGB, YBR...: not an X-ray as exported.
        raise NotAccepted("This DICOM is not a single greyscale X-ray image "
                          f"({photometric or 'no photometric interpretation'}).", request_id)
    if number(ds.get("BitsAllocated"), "BitsAllocated", 0) not in (8, 16):
        raise NotAccepted("This DICOM is not an 8- or 16-bit greyscale X-ray image.",
                          request_id)
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        raise NotAccepted("This DICOM says patient details are burned into the image; Radio "
                          "cannot de-identify it. Export it without annotations.", request_id)
    rows, cols = number(ds.get("Rows"), "Rows", 0), number(ds.get("Columns"), "Columns", 0)
    if rows < 32 or cols < 32:
        raise Malformed(f"The image is only {cols}x{rows} pixels; too small to read.",
                        request_id)


def _has_voi(ds: Dataset) -> bool:
    return "WindowCenter" in ds or "VOILUTSequence" in ds


def _bands(rows: int, cols: int) -> list[slice]:
    step = max(1, BAND_PIXELS // max(cols, 1))
    return [slice(i, min(i + step, rows)) for i in range(0, rows, step)]


def to_display(ds: Dataset) -> Image.Image:
    """The 8-bit greyscale image a viewer would show (MONOCHROME2: white = dense).

    Modality LUT, VOI LUT or window, MONOCHROME1 inversion and the min-max stretch of a
    16-bit PNG (``serving.preprocessing``), computed band by band with the same float32
    operations as on the whole image: the result is the same, the memory one band's.
    """
    raw = ds.pixel_array
    inverted = str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1"
    simple = raw.dtype == np.uint8 and not _has_voi(ds) and "RescaleSlope" not in ds
    if simple:  # an 8-bit image needs no stretching: same as an 8-bit PNG
        arr8 = 255 - raw if inverted else raw
        return Image.fromarray(np.ascontiguousarray(arr8))
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    voi = _has_voi(ds)

    def values(band: slice) -> np.ndarray:
        arr = apply_modality_lut(raw[band], ds).astype(np.float32)
        return apply_voi_lut(arr, ds).astype(np.float32) if voi else arr

    bands = _bands(*raw.shape[:2])

    def extrema(transform: Any) -> tuple[float, float]:
        found = [(float(a.min()), float(a.max())) for a in (transform(b) for b in bands)]
        return min(f[0] for f in found), max(f[1] for f in found)

    lo, hi = extrema(values)
    if inverted:
        top = hi + lo

        def shown(band: slice) -> np.ndarray:
            return top - values(band)

        lo, hi = extrema(shown)
    else:
        shown = values
    out = np.empty(raw.shape[:2], dtype=np.uint8)
    for band in bands:
        arr = shown(band)
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        out[band] = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(out, mode="L")


def render(image: Image.Image) -> bytes:
    """The PNG browsers are shown: the display image, at most RENDER_SIDE a side."""
    if max(image.size) > RENDER_SIDE:
        image = image.copy()
        image.thumbnail((RENDER_SIDE, RENDER_SIDE), Image.Resampling.BOX)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


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


def _read(data: bytes) -> Dataset:
    """The dataset, a deflated one inflated within the budget; DicomLimitError,
    InvalidDicomError, ValueError... when damaged."""
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import _read_file_meta_info, read_preamble
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import ExplicitVRLittleEndian

    fp = DicomBytesIO(data)
    read_preamble(fp, False)
    meta = _read_file_meta_info(fp)
    if str(meta.get("TransferSyntaxUID", "")) != dicom_limits.DEFLATED:
        return dcmread(io.BytesIO(data))
    # pydicom would inflate the whole rest at once, whatever its size; the inflated dataset
    # is read as the explicit VR little endian it is, from one buffer (no further copy).
    dataset = dicom_limits.inflate(data[fp.tell():])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = DicomBytesIO()
    buf.write(bytes(128) + b"DICM")
    write_file_meta_info(buf, meta, enforce_standard=False)
    buf.write(dataset)
    del dataset
    buf.seek(0)
    try:
        return dcmread(buf)
    finally:
        buf.close()  # frees the inflated copy: the dataset holds what it read


def _decode(ds: Dataset, request_id: str | None) -> Image.Image:
    """The display image, once the header and the compressed frame passed the limits."""
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None)
    name = getattr(syntax, "name", str(syntax))
    if str(syntax) not in dicom_limits.SUPPORTED:
        raise UnsupportedFormat(f"Radio cannot decode this DICOM's compression ({name}); export "
                                "it uncompressed or as JPEG.", request_id)
    rows, cols = dicom_limits.check_budget(ds)
    filled = dicom_limits.check_frame(ds, str(syntax), rows, cols)
    try:
        if filled is not None:
            _same_with_filler(ds, filled)
        return to_display(ds)
    except NotImplementedError as exc:  # no decoder installed for it
        raise UnsupportedFormat(f"Radio cannot decode this DICOM's compression ({name}); export "
                                "it uncompressed or as JPEG.", request_id) from exc
    except (RuntimeError, ValueError, TypeError, AttributeError, EOFError, KeyError,
            IndexError) as exc:  # the decoder of a syntax Radio reads refused the data
        raise Malformed(dicom_limits.DAMAGED_IMAGE, request_id) from exc


def _digest(ds: Dataset) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(ds.pixel_array).data).digest()


def _same_with_filler(ds: Dataset, filled: bytes) -> None:
    """Decode the frame with filler before each scan's end, then the frame itself: the
    same pixels unless a scan was cut (one decoded array in memory at a time)."""
    from pydicom.encaps import encapsulate

    original = ds.PixelData
    ds.PixelData = encapsulate([filled])
    try:
        probe = _digest(ds)
    finally:
        ds.PixelData = original  # also drops the probe's decoded pixels
    if _digest(ds) != probe:
        raise dicom_limits.DicomLimitError(dicom_limits.DAMAGED_IMAGE)


def load(data: bytes, request_id: str | None = None, key: bytes | None = None) -> Loaded:
    """The accepted form of an uploaded DICOM. The caller holds a decode slot.

    With ``key``, the source keeps the PatientID's keyed hash (:func:`patient_key`) as
    ``patient``; the PatientID itself is removed with the rest.

    ``Malformed`` (damaged, over the limits), ``UnsupportedFormat`` (undecodable
    compression), ``NotAccepted`` (not a frontal chest X-ray): ``app.platform.failures``.
    """
    from pydicom.errors import InvalidDicomError

    from app.intake import deid

    try:
        try:
            ds = _read(data)
        except (InvalidDicomError, ValueError, EOFError, OSError, KeyError, TypeError,
                struct.error) as exc:
            if isinstance(exc, dicom_limits.DicomLimitError):
                raise
            raise Malformed(dicom_limits.DAMAGED, request_id) from exc
        _check(ds, request_id)
        image = _decode(ds, request_id)
        model_input, rendering = to_array(image), render(image)
        del image
        ds.PixelData = ds.PixelData  # drops pydicom's cached decoded pixels before saving
        source = _source(ds, key)
        deid.deidentify(ds)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        del ds  # its pixel data, before the saved copy is copied out
    except dicom_limits.DicomLimitError as exc:
        exc.request_id = request_id
        raise
    except RecursionError as exc:  # sequences nested thousands deep
        raise Malformed("The DICOM file is damaged: its sequences are nested too deeply.",
                        request_id) from exc
    return Loaded(out.getvalue(), model_input, source, rendering)

