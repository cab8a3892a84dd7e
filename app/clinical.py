"""The clinical pages: history, one prediction with its reviews, the review queue.

Clinicians see their own predictions; radiologists and admins see everyone's and review
them (validate, correct the label, or say they don't know, with a comment).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app import images, intake, reviews
from app.auth import client_ip, current_user, requires
from app.db import web as dbweb
from app.db.models import Prediction, User

bp = Blueprint("clinical", __name__)
PAGE_SIZE = 200


def _visible(pred: Prediction | None, user: User) -> Prediction:
    """The prediction if ``user`` may see it; 404 when it does not exist, 403 otherwise."""
    if pred is None:
        abort(404)
    if not user.can("radiologist") and pred.user_id != user.id:
        abort(403)
    return pred


def _date(value: str | None, end: bool = False) -> datetime | None:
    try:
        day = datetime.strptime(value or "", "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return day + timedelta(days=1) if end else day


@bp.get("/history")
@requires("clinician")
def history() -> ResponseReturnValue:
    """Past predictions, newest first; filters: label, review state, date range."""
    user = current_user()
    assert user is not None
    query = select(Prediction).options(selectinload(Prediction.reviews),
                                       selectinload(Prediction.user))
    if not user.can("radiologist"):
        query = query.where(Prediction.user_id == user.id)
    label = request.args.get("label", "")
    if label:
        query = query.where(Prediction.label == label)
    start, end = _date(request.args.get("from")), _date(request.args.get("to"), end=True)
    if start:
        query = query.where(Prediction.created_at >= start)
    if end:
        query = query.where(Prediction.created_at < end)
    rows = dbweb.session().scalars(query.order_by(Prediction.created_at.desc())).all()
    wanted_state = request.args.get("state", "")
    items = [(p, reviews.state(p)) for p in rows]
    if wanted_state in reviews.STATES:
        items = [(p, st) for p, st in items if st == wanted_state]
    return render_template(
        "history.html", items=items[:PAGE_SIZE], total=len(items), label=label,
        state=wanted_state, start=request.args.get("from", ""), end=request.args.get("to", ""),
        classes=reviews.KNOWN_CLASSES, states=reviews.STATES,
    )


@bp.get("/predictions/<pred_id>")
@requires("clinician")
def detail(pred_id: str) -> ResponseReturnValue:
    """One prediction: image, heatmap, answer, reviews, and the review form."""
    user = current_user()
    assert user is not None
    pred = _visible(dbweb.session().get(Prediction, pred_id), user)
    classes = sorted(pred.probabilities or {}) or list(reviews.KNOWN_CLASSES)
    return render_template("detail.html", pred=pred, state=reviews.state(pred),
                           final=reviews.final_label(pred), classes=classes,
                           error=request.args.get("error", ""))


@bp.get("/predictions/<pred_id>/image")
@requires("clinician")
def image(pred_id: str) -> ResponseReturnValue:
    """The stored image (a DICOM is shown as the greyscale the model received)."""
    user = current_user()
    assert user is not None
    pred = _visible(dbweb.session().get(Prediction, pred_id), user)
    cfg = current_app.config["RADIO"]
    try:  # a DICOM's rendering, stored at intake: never decoded again per view
        data, media = intake.shown(cfg, pred.image_sha256, pred.image_format)
    except images.ImageMissing:
        abort(404)
    resp = current_app.response_class(data, mimetype=media)
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return resp


@bp.post("/predictions/<pred_id>/review")
@requires("radiologist")
def review(pred_id: str) -> ResponseReturnValue:
    """Validate / correct / don't know; back to the prediction (or the next in the queue)."""
    user = current_user()
    assert user is not None
    session = dbweb.session()
    pred = session.get(Prediction, pred_id)
    if pred is None:
        abort(404)
    try:
        reviews.add(session, pred, user, request.form.get("verdict", ""),
                    request.form.get("label") or None, request.form.get("comment", ""),
                    ip=client_ip())
    except reviews.ReviewError as exc:
        session.rollback()
        return redirect(url_for("clinical.detail", pred_id=pred_id, error=str(exc)))
    session.commit()
    if request.form.get("then") == "queue":
        return redirect(url_for("clinical.queue"))
    return redirect(url_for("clinical.detail", pred_id=pred_id))


@bp.get("/queue")
@requires("radiologist")
def queue() -> ResponseReturnValue:
    """Images waiting for this radiologist: disagreements and needs-review first."""
    user = current_user()
    assert user is not None
    return render_template("queue.html", items=reviews.queue(dbweb.session(), user))
