"""Pages for the dataset: radiologists contribute images, admins snapshot versions.

A contributed image (PNG, JPEG or DICOM, de-identified like any upload) is stored by its
hash and recorded as a prediction with status ``contributed`` and no model answer; with a
label, the contributor's own review labels it, otherwise it waits in the review queue.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue

from app import audit, datasets, dicom, images, reviews
from app.auth import client_ip, current_user, requires
from app.db import web as dbweb
from app.db.models import Prediction
from app.errors import APIError
from serving.preprocessing import ImageError, preprocess, sniff_format

bp = Blueprint("datasets", __name__)


def _decode(data: bytes) -> tuple[bytes, str, dict | None]:
    """(bytes to store, format, source); APIError when it is not a usable image."""
    if dicom.is_dicom(data):
        clean, _image, source = dicom.load(data)
        return clean, "DICOM", source
    try:
        fmt = sniff_format(data)
        preprocess(data)
    except ImageError as exc:
        raise APIError(400, str(exc)) from exc
    return data, fmt, None


def _page(message: str = "", error: str = "", status: int = 200) -> ResponseReturnValue:
    return render_template("contribute.html", classes=reviews.KNOWN_CLASSES, message=message,
                           error=error), status


@bp.get("/contribute")
@requires("radiologist")
def contribute_form() -> ResponseReturnValue:
    """The contribution form."""
    return _page()


@bp.post("/contribute")
@requires("radiologist")
def contribute() -> ResponseReturnValue:
    """Store one contributed image, labelled or not."""
    user = current_user()
    assert user is not None
    cfg = current_app.config["RADIO"]
    upload = request.files.get("file")
    label = request.form.get("label", "")
    if upload is None:
        return _page(error="Choose an image.", status=400)
    if label and label not in reviews.KNOWN_CLASSES:
        return _page(error="Unknown label.", status=400)
    try:
        data, fmt, source = _decode(upload.read())
    except APIError as exc:
        return _page(error=exc.message, status=exc.status)
    sha = images.store(images.location(cfg), data, fmt)
    session = dbweb.session()
    pred = Prediction(id=uuid.uuid4().hex, user_id=user.id, site=cfg.site, image_sha256=sha,
                      image_format=fmt, image_bytes=len(data), source=source,
                      status="contributed", needs_review=not label)
    session.add(pred)
    session.flush()
    audit.log(session, "contribution", user_id=user.id, target=pred.id, ip=client_ip())
    if label:
        reviews.add(session, pred, user, "corrected", label,
                    request.form.get("comment", ""), ip=client_ip())
    session.commit()
    note = f"labelled {label}" if label else "waiting in the review queue"
    return _page(message=f"Image stored ({note}).", status=201)


@bp.get("/datasets")
@requires("admin")
def overview() -> ResponseReturnValue:
    """Validated images per class and source, and the dataset versions."""
    data_dir = current_app.config["RADIO"].data_dir
    pool = datasets.counts(datasets.validated(dbweb.session()))
    return render_template("datasets.html", pool=pool,
                           production=datasets.versions(data_dir, "production"),
                           reference=datasets.versions(data_dir, "reference"), message="")


@bp.post("/datasets/snapshot")
@requires("admin")
def snapshot() -> ResponseReturnValue:
    """A new production version from every validated image."""
    user = current_user()
    assert user is not None
    cfg = current_app.config["RADIO"]
    data_dir = cfg.data_dir
    session = dbweb.session()
    status = 201
    try:
        entry = datasets.snapshot_production(session, data_dir, user.username, user.id,
                                             image_store=images.location(cfg))
        session.commit()
        message = f"Production version {entry['version']}: {entry['images']} images."
    except datasets.DatasetError as exc:
        message, status = str(exc), 400
    pool = datasets.counts(datasets.validated(session))
    return render_template("datasets.html", pool=pool,
                           production=datasets.versions(data_dir, "production"),
                           reference=datasets.versions(data_dir, "reference"),
                           message=message), status
