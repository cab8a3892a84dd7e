"""``POST /predict``: validate an uploaded X-ray, store it, ask the model server, answer JSON.

What is kept of one request: the image, once, by content hash in the image store
(``app/store/images.py``), and one prediction row in the database
(``app/clinical/records.py``), committed before the answer leaves: the answer, or why there is none.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from app.accounts.auth import current_user, requires
from app.clinical import records
from app.intake import intake
from app.platform import contract, metrics, model_client, state
from app.platform.config import Config
from app.platform.errors import APIError, describe
from app.platform.failures import DomainError, StorageFull
from app.store.db import web as dbweb
from serving.background import Background
from serving.image_stats import stats_dict

bp = Blueprint("predict", __name__)
# Log lines carry id, size, status and latency only: never a file name or pixel (PHI).
log = logging.getLogger("radio.predict")


def _read_upload(request_id: str) -> bytes:
    """The uploaded bytes from the multipart field ``file``; APIError 400/415 otherwise."""
    if request.mimetype != "multipart/form-data":
        raise APIError(
            415, "Send the image as multipart/form-data in a field named 'file'.", request_id
        )
    request.strict_forms = True  # type: ignore[attr-defined]  # app.platform.request.RadioRequest
    try:
        uploads = request.files.getlist("file")
    except UnicodeDecodeError as exc:
        raise APIError(
            400, "A part header of the upload (such as the file name) is not UTF-8 text; "
            "rename the file with plain letters and try again.", request_id) from exc
    except ValueError as exc:  # strict parsing (app/platform/request.py): never silently empty
        raise APIError(400, "The upload is not valid multipart/form-data.", request_id) from exc
    if not uploads:
        raise APIError(
            400, "No file was uploaded; choose an image in the field 'file'.", request_id
        )
    if len(uploads) > 1:
        raise APIError(
            400, f"{len(uploads)} files were sent in the field 'file'; send one image per "
            "request.", request_id)
    return uploads[0].read()


def _analyse(cfg: Config, image: Any) -> dict[str, Any]:
    """Call the model; the parsed prediction (the caller keeps the breaker's count)."""
    parsed = contract.parse_response(model_client.invoke(cfg, image, heatmap=True))
    state.get().last_model = parsed["model"]
    return parsed


def _keep(cfg: Config, item: intake.Intake,
          request_id: str) -> tuple[str, dict[str, float]]:
    """Store the image and compute the model input's statistics for data drift
    (``serving.image_stats``): what the prediction row needs besides the answer."""
    return intake.keep(cfg, item, request_id), stats_dict(item.image)


def _record_in_db(cfg: Config, request_id: str, kept: tuple[str, dict[str, float]],
                  item: intake.Intake, **fields: Any) -> None:
    """The prediction row, committed before answering (the image is already in the store)."""
    user = current_user()
    sha, image_stats = kept
    session = dbweb.session()
    records.record(session, cfg, request_id, user.id if user else None, sha, item.fmt,
                   len(item.data), source=item.source, image_stats=image_stats, **fields)
    session.commit()


def _answer(cfg: Config, request_id: str, item: intake.Intake,
            started: float) -> dict[str, Any]:
    """Store the image, ask the model, record the answer; the answer, or an error."""
    breaker = state.get().breaker
    wait_s = breaker.allow()
    if wait_s is not None:  # fail fast: nothing stored, nothing analysed
        metrics.MODEL_ERRORS.labels(kind="breaker_open").inc()
        raise model_client.ModelServerError(
            "The model server is not answering; Radio will try it again in "
            f"{wait_s:.0f} s. Nothing was analysed.", request_id, kind="breaker_open")
    # The image is stored (and its drift statistics computed) while the model works on it:
    # the write waits on the disk and the call on a socket, so together they take the longer
    # of the two (3 ms saved of a 1024² PNG's answer, make bench).
    stored = Background(lambda: _keep(cfg, item, request_id))
    try:
        parsed = _analyse(cfg, item.image)
        breaker.record(ok=True)
    except model_client.ModelServerError as exc:
        # Only "no answer" counts against the server: a 502 is an answer, not a hang.
        breaker.record(ok=not exc.no_answer)
        if exc.kind == "contract":  # raised by the check above, after a timed call
            metrics.MODEL_ERRORS.labels(kind="contract").inc()
        metrics.observe_prediction(None, error=True)
        exc.request_id = request_id
        cause = repr(exc.__cause__) if exc.__cause__ else None
        log.warning("id=%s model server error %s: %s", request_id, exc.kind, cause)
        try:  # the failure is recorded when it can be; the user gets the model's error
            _record_in_db(cfg, request_id, stored(), item, error=exc.message)
        except (SQLAlchemyError, StorageFull) as db_exc:
            log.error("id=%s could not record the model error: %s", request_id,
                      type(db_exc).__name__)
        raise
    except BaseException:
        stored.wait()  # never leave the write running behind an unexpected error
        raise
    try:
        kept = stored()
    except StorageFull as exc:
        # The model answered but the image cannot be kept: no answer Radio cannot account for.
        raise StorageFull(request_id, analysed=True) from exc
    result = {"id": request_id, **parsed}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000.0, 1)
    try:
        _record_in_db(cfg, request_id, kept, item, result=result)
    except SQLAlchemyError as exc:
        # An answer Radio cannot account for later is not given; the stored image has no
        # row now and the retention pass removes it as an orphan.
        log.error("id=%s could not record the answer: %s", request_id, type(exc).__name__)
        raise StorageFull(request_id, analysed=True, image_left=True) from exc
    return result


@bp.post("/predict")
@requires("clinician")
def predict() -> Response:
    """Analyse one uploaded chest X-ray (multipart field ``file``)."""
    return jsonify(analyse_upload())


def analyse_upload() -> dict[str, Any]:
    """The answer to this request's upload, recorded (teaching mode shows it later)."""
    started = time.perf_counter()
    cfg: Config = current_app.config["RADIO"]
    request_id = uuid.uuid4().hex
    size = request.content_length or 0
    status = 500
    slots = state.get().predict_slots
    # Never wait for a slot: the threads left over serve the page and /health.
    if not slots.acquire(blocking=False):
        status = 503
        log.info("id=%s bytes=%d status=503 (all predict slots busy)", request_id, size)
        raise APIError(503, "Radio is busy with other uploads; please try again in a moment.",
                       request_id)
    try:
        data = _read_upload(request_id)
        size = len(data)
        # From here on only the accepted form exists (a DICOM's de-identified copy).
        item = intake.accept(cfg, state.get().decode_slots, data, request_id,
                             patient_key=str(current_app.secret_key).encode())
        del data
        result = _answer(cfg, request_id, item, started)
        metrics.observe_prediction(result)
        status = 200
        return result
    except APIError as exc:
        status = exc.status
        raise
    except DomainError as exc:
        status = describe(exc)[0]
        raise
    except HTTPException as exc:  # e.g. 413 raised by Werkzeug while reading the body
        status = exc.code or 500
        raise
    finally:
        slots.release()
        log.info(
            "id=%s bytes=%d status=%d latency_ms=%.1f",
            request_id, size, status, (time.perf_counter() - started) * 1000.0,
        )
