"""Pages for the dataset: radiologists contribute images, admins snapshot versions.

A contributed image (PNG, JPEG or DICOM, accepted by ``app.intake.intake`` like any upload) is
stored by its hash and recorded as a prediction of kind ``contribution`` (status
``contributed``) with no model answer; with a label, the contributor's own review labels
it, otherwise it waits in the review queue.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue

from app.accounts import audit
from app.accounts.auth import client_ip, current_user, requires
from app.clinical import reviews
from app.datasets import contribution_gate, dataset_versions, service
from app.intake import intake
from app.platform import errors, state
from app.platform.failures import DomainError
from app.store import images
from app.store.db import web as dbweb
from app.store.db.models import Prediction

bp = Blueprint("datasets", __name__)


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
        # The same intake as POST /predict: decode slot, limits, de-identification.
        item = intake.accept(cfg, state.get().decode_slots, upload.read(),
                             patient_key=str(current_app.secret_key).encode())
        gate = contribution_gate.check(cfg, item)  # before anything is stored
        if gate.refused:
            return _page(error=gate.message, status=422)
        sha = intake.keep(cfg, item)
    except DomainError as exc:  # refused, busy, or the store is full
        status, message = errors.describe(exc)
        return _page(error=message, status=status)
    session = dbweb.session()
    pred = Prediction(id=uuid.uuid4().hex, user_id=user.id, site=cfg.site, image_sha256=sha,
                      image_format=item.fmt, image_bytes=len(item.data), source=item.source,
                      status="contributed", kind="contribution", needs_review=not label,
                      ood_score=gate.ood_score, review_reasons=gate.reasons or None)
    session.add(pred)
    session.flush()
    audit.log(session, "contribution", user_id=user.id, target=pred.id, ip=client_ip())
    if label:
        reviews.add(session, pred, user, "corrected", label,
                    request.form.get("comment", ""), ip=client_ip())
    session.commit()
    note = f"labelled {label}" if label else "waiting in the review queue"
    return _page(message=f"Image stored ({note}). {gate.message}".strip(), status=201)


@bp.get("/datasets")
@requires("admin")
def overview() -> ResponseReturnValue:
    """Validated images per class and source, and the dataset versions."""
    session = dbweb.session()
    pool = service.counts(service.validated(session))
    return render_template("datasets.html", pool=pool,
                           production=service.versions(session, "production"),
                           reference=service.versions(session, "reference"), message="")


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
    same = dataset_versions.same_as_latest(session)
    try:
        if same is not None:  # said, not made: a second identical version helps no one
            raise service.DatasetError(
                f"Nothing changed since production version {same}: the same images with the "
                "same labels. No new version was made.")
        entry = service.snapshot_production(session, data_dir, user.username, user.id,
                                             image_store=images.location(cfg))
        session.commit()
        message = f"Production version {entry['version']}: {entry['images']} images."
        if entry.get("missing_images"):
            message += (f" {entry['missing_images']} validated images are no longer stored "
                        "(removed after the retention period) and were left out.")
    except service.DatasetError as exc:
        message, status = str(exc), 409 if same is not None else 400
    pool = service.counts(service.validated(session))
    return render_template("datasets.html", pool=pool,
                           production=service.versions(session, "production"),
                           reference=service.versions(session, "reference"),
                           message=message, failed=status >= 400), status
