"""The clinical pages: history, one prediction with its reviews, the review queue.

Clinicians see their own predictions; radiologists and admins see everyone's and review
them (validate, correct the label, or say they don't know, with a comment).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.accounts.auth import client_ip, current_user, requires
from app.clinical import notes, review_queue, reviews
from app.clinical import reads as teaching
from app.intake import intake
from app.platform import state
from app.store import images
from app.store.db import web as dbweb
from app.store.db.models import Prediction, User

bp = Blueprint("clinical", __name__)
PAGE_SIZE = 50


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
    """Past predictions, newest first, by pages; filters: label, review state, date range
    (all in SQL)."""
    user = current_user()
    assert user is not None
    where = []
    if not user.can("radiologist"):
        where.append(Prediction.user_id == user.id)
    label = request.args.get("label", "")
    if label:  # never by the answer of a case its clinician has still to read
        where.extend((Prediction.label == label, teaching.not_awaiting(user)))
    note = request.args.get("note", "").strip()
    if note:
        where.append(notes.matching(user, note))
    start, end = _date(request.args.get("from")), _date(request.args.get("to"), end=True)
    error = ""
    if start and end and start >= end:
        error, end = "'From' is after 'To': showing everything from 'From' on.", None
    if start:
        where.append(Prediction.created_at >= start)
    if end:
        where.append(Prediction.created_at < end)
    wanted_state = request.args.get("state", "")
    if wanted_state in reviews.STATES:
        where.append(reviews.where_state(wanted_state))
    session = dbweb.session()
    total = session.scalar(select(func.count(Prediction.id)).where(*where)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    number = request.args.get("page", "1")
    page = min(max(1, int(number) if number.isdigit() else 1), pages)
    rows = session.scalars(
        select(Prediction).where(*where)
        .options(selectinload(Prediction.reviews), selectinload(Prediction.user))
        .order_by(Prediction.created_at.desc(), Prediction.id)
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    args = {k: v for k, v in request.args.items() if k != "page"}
    ids = [p.id for p in rows]
    return render_template(
        "history.html", items=[(p, reviews.state(p)) for p in rows], total=total,
        note=note, notes=notes.of_cases(session, user, ids),
        awaiting=teaching.awaiting(session, user, ids),
        page=page, pages=pages, args=args, label=label, state=wanted_state,
        start=request.args.get("from", ""), end=request.args.get("to", ""),
        classes=reviews.KNOWN_CLASSES, states=reviews.STATES, error=error,
    )


@bp.get("/predictions/<pred_id>")
@requires("clinician")
def detail(pred_id: str) -> ResponseReturnValue:
    """One prediction: image, heatmap, answer, reviews, and the review form."""
    user = current_user()
    assert user is not None
    session = dbweb.session()
    pred = _visible(session.get(Prediction, pred_id), user)
    if teaching.awaits_read(session, pred, user):  # their own read before Radio's answer
        return redirect(url_for("teaching.read_form", pred_id=pred.id))
    # After "Save and next case": which case was just reviewed (a radiologist's own).
    saved_id = request.args.get("saved", "")
    saved = session.get(Prediction, saved_id) if saved_id and user.can("radiologist") else None
    return render_template("detail.html", pred=pred, state=reviews.state(pred),
                           review_text=reviews.describe(pred),
                           verdict_words=reviews.VERDICT_WORDS,
                           classes=reviews.classes_of(pred), saved=saved,
                           queued=bool(saved), error=request.args.get("error", ""))


@bp.get("/predictions/<pred_id>/image")
@requires("clinician")
def image(pred_id: str) -> ResponseReturnValue:
    """The stored image (a DICOM is shown as the greyscale the model received)."""
    user = current_user()
    assert user is not None
    pred = _visible(dbweb.session().get(Prediction, pred_id), user)
    cfg = current_app.config["RADIO"]
    try:  # a DICOM's rendering, stored at intake: never decoded again per view
        data, media = intake.shown(cfg, state.get().decode_slots, pred.image_sha256,
                                   pred.image_format)
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
        nxt = review_queue.next_case(session, user)
        if nxt is None:
            return redirect(url_for("clinical.queue", saved=pred_id))
        return redirect(url_for("clinical.detail", pred_id=nxt.id, saved=pred_id))
    return redirect(url_for("clinical.detail", pred_id=pred_id))


@bp.get("/queue")
@requires("radiologist")
def queue() -> ResponseReturnValue:
    """Images waiting for this radiologist: disagreements and needs-review first."""
    user = current_user()
    assert user is not None
    session = dbweb.session()
    number = request.args.get("page", "1")
    queued = review_queue.page(session, user, int(number) if number.isdigit() else 1)
    saved_id = request.args.get("saved", "")
    return render_template("queue.html", queue=queued, reasons=review_queue.REASONS,
                           verdict_words=reviews.VERDICT_WORDS,
                           awaiting=teaching.awaiting(  # a radiologist's own teaching cases
                               session, user, [e.prediction.id for e in queued.entries]),
                           saved=session.get(Prediction, saved_id) if saved_id else None)
