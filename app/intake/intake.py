"""One intake for every uploaded image, whatever the route: ``POST /predict`` and
``POST /contribute`` both go through :func:`accept` and :func:`keep`.

:func:`accept` sniffs the kind (DICOM, PNG, JPEG), then decodes inside one of the worker's
RADIO_DECODE_SLOTS (a request waits RADIO_DECODE_WAIT_S for one, then is told Radio is
busy), under the limits of its kind: ``serving.preprocessing`` for PNG and JPEG,
``app.intake.dicom_limits`` for DICOM, checked from the header before anything is
decompressed. What comes out is what Radio keeps: the upload without its text metadata
(``app.intake.metadata``), or the de-identified DICOM and the PNG rendering browsers are
shown of it (:func:`shown`), so a stored DICOM is never decoded again per view. Refusals
are domain errors (``app.platform.failures``); ``app.platform.errors`` gives their statuses.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from app.intake import dicom, metadata
from app.platform.config import Config
from app.platform.failures import Busy, Malformed, StorageFull, UnsupportedFormat
from app.store import images
from serving.preprocessing import ImageError, preprocess, sniff_format


@dataclass(frozen=True)
class Intake:
    """An accepted upload."""

    data: bytes  # what is stored: the upload without text metadata, the de-identified DICOM
    fmt: str  # "PNG", "JPEG" or "DICOM"
    image: np.ndarray  # the model input
    source: dict[str, str] | None = None  # a DICOM's institution, manufacturer, view...
    rendering: bytes | None = None  # a DICOM's PNG for browsers


@contextmanager
def decode_slot(cfg: Config, slots: threading.BoundedSemaphore,
                request_id: str | None) -> Iterator[None]:
    """One of the worker's decode slots (each decode may take ~100 MB), or Busy.

    ``slots`` is the worker's ``AppState.decode_slots`` (``app.platform.state``), passed in by
    the view: intake never reaches for the Flask app."""
    if not slots.acquire(timeout=cfg.decode_wait_s):
        raise Busy("Radio is busy decoding other images; please try again in a moment.",
                   request_id)
    try:
        yield
    finally:
        slots.release()


def accept(cfg: Config, slots: threading.BoundedSemaphore, data: bytes,
           request_id: str | None = None, patient_key: bytes | None = None) -> Intake:
    """The accepted form of an upload; Malformed, UnsupportedFormat or NotAccepted (the
    message says why), or Busy (``app.platform.failures``).

    ``patient_key`` (the app's secret): a DICOM's PatientID is kept as its keyed hash, so
    that data drift permutes a patient's films together (dicom.patient_key)."""
    if dicom.is_dicom(data):
        with decode_slot(cfg, slots, request_id):
            loaded = dicom.load(data, request_id, key=patient_key)
        return Intake(loaded.clean, "DICOM", loaded.image, loaded.source, loaded.rendering)
    try:
        fmt = sniff_format(data)
    except ImageError as exc:
        # Empty is a bad request; non-empty bytes of another kind are the wrong media type.
        raise (UnsupportedFormat if data else Malformed)(str(exc), request_id) from exc
    with decode_slot(cfg, slots, request_id):
        try:
            image = preprocess(data)
        except ImageError as exc:
            raise Malformed(str(exc), request_id) from exc
    return Intake(metadata.strip(data, fmt), fmt, image)


def keep(cfg: Config, item: Intake, request_id: str | None = None) -> str:
    """Store the accepted upload (and a DICOM's rendering) once, by content; its SHA-256.
    StorageFull when the server cannot."""
    where = images.location(cfg)
    try:
        sha = images.store(where, item.data, item.fmt)
        if item.rendering is not None:
            images.store_rendering(where, sha, item.rendering)
    except StorageFull as exc:
        exc.request_id = request_id
        raise
    return sha


def shown(cfg: Config, slots: threading.BoundedSemaphore, sha256: str,
          fmt: str) -> tuple[bytes, str]:
    """``(bytes, media type)`` a browser is shown of a stored image: a DICOM's stored
    rendering. A DICOM stored before renderings were kept is rendered once (in a decode
    slot) and its rendering kept. ImageMissing when the image is gone."""
    where = images.location(cfg)
    if fmt != "DICOM":
        return images.load(where, sha256, fmt), images.MEDIA_TYPES.get(
            fmt, "application/octet-stream")
    try:
        return images.load_rendering(where, sha256), "image/png"
    except images.ImageMissing:
        pass
    data = images.load(where, sha256, fmt)
    with decode_slot(cfg, slots, None):
        png = dicom.load(data).rendering
    try:
        images.store_rendering(where, sha256, png)
    except StorageFull:
        pass  # shown all the same; rendered again next time
    return png, "image/png"

