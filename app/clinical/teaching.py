"""The pages of the teaching loop and of the clinicians' notes (``app.clinical.reads``,
``app.clinical.notes``).

* ``POST /teaching/predict``: the Analyse page in teaching mode; analyses the upload like
  ``POST /predict`` but answers only the reference and the classes to choose from.
* ``GET|POST /predictions/<id>/read``: the clinician's read of a blinded case; once it is
  recorded, Radio's answer (JSON for the Analyse page, else the case page).
* ``GET /teaching``: the clinician's agreement with radiologists, month by month, and
  Radio's on the same cases.
* ``POST /predictions/<id>/note``: the clinician's note on their own case.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.accounts.auth import client_ip, current_user, requires
from app.clinical import notes, predict, reviews
from app.clinical import reads as teaching
from app.clinical.clinical import _visible
from app.platform import errors
from app.store.db import web as dbweb
from app.store.db.models import Prediction, User

bp = Blueprint("teaching", __name__)


def _me() -> User:
    user = current_user()
    assert user is not None  # @requires ran first
    return user


@bp.post("/teaching/predict")
@requires("clinician")
def analyse() -> ResponseReturnValue:
    """Analyse the upload and keep the answer from the clinician until they read the case."""
    user, session = _me(), dbweb.session()

    def blind_new(sess: Session, _context: Any, _instances: Any) -> None:
        # The teaching row joins the prediction row's own transaction (app.clinical.records commits
        # it): at no moment is the recorded answer open to its clinician.
        for obj in list(sess.new):
            if isinstance(obj, Prediction):
                teaching.blind(sess, obj, user)

    event.listen(session, "before_flush", blind_new)
    try:
        result = predict.analyse_upload()
    finally:
        event.remove(session, "before_flush", blind_new)
    pred = session.get(Prediction, result["id"])
    if pred is None or not teaching.awaits_read(session, pred, user):
        return jsonify(result)  # a refusal: no diagnosis to read
    return jsonify(teaching.blinded_answer(result, reviews.classes_of(pred)))


@bp.get("/predictions/<pred_id>/read")
@requires("clinician")
def read_form(pred_id: str) -> ResponseReturnValue:
    """The image and the four answers, without Radio's."""
    user, session = _me(), dbweb.session()
    pred = _visible(session.get(Prediction, pred_id), user)
    if not teaching.awaits_read(session, pred, user):
        return redirect(url_for("clinical.detail", pred_id=pred.id))
    return render_template("teaching_read.html", pred=pred, classes=reviews.classes_of(pred),
                           error=request.args.get("error", ""))


@bp.post("/predictions/<pred_id>/read")
@requires("clinician")
def record_read(pred_id: str) -> ResponseReturnValue:
    """Record the read; then Radio's answer."""
    user, session = _me(), dbweb.session()
    pred = _visible(session.get(Prediction, pred_id), user)
    try:
        teaching.record(session, pred, user, request.form.get("label", ""), ip=client_ip())
    except teaching.TeachingError as exc:
        session.rollback()
        if errors.wants_html():
            return redirect(url_for("teaching.read_form", pred_id=pred.id, error=str(exc)))
        raise errors.APIError(409, str(exc), pred.id) from exc
    session.commit()
    if errors.wants_html():
        return redirect(url_for("clinical.detail", pred_id=pred.id))
    return jsonify(teaching.full_answer(pred))


@bp.get("/teaching")
@requires("clinician")
def progress() -> ResponseReturnValue:
    """The clinician's own reads against the radiologists', over time."""
    user, session = _me(), dbweb.session()
    periods = teaching.agreement(session, user)
    cases, total = teaching.recent(session, user)
    return render_template("teaching.html", periods=periods, cases=cases, total=total,
                           settled=sum(p.cases for p in periods),
                           mine=sum(p.mine for p in periods),
                           radio=sum(p.radio for p in periods))


@bp.post("/predictions/<pred_id>/note")
@requires("clinician")
def save_note(pred_id: str) -> ResponseReturnValue:
    """Set or clear the clinician's note on their case."""
    user, session = _me(), dbweb.session()
    pred = _visible(session.get(Prediction, pred_id), user)
    try:
        notes.save(session, pred, user, request.form.get("note", ""), ip=client_ip())
    except notes.NoteError as exc:
        session.rollback()
        return redirect(url_for("clinical.detail", pred_id=pred.id, note_error=str(exc)))
    session.commit()
    return redirect(url_for("clinical.detail", pred_id=pred.id, note_saved=1))


@bp.app_template_global()
def casework(pred: Prediction) -> dict[str, Any]:
    """What the case page adds for the person looking: the note they may see, whether they
    may write it, their three reads (teaching mode), and which reviews count (each
    reviewer's latest)."""
    user, session = current_user(), dbweb.session()
    if user is None:
        abort(401)
    return {"note": notes.of_case(session, pred, user), "may_note": pred.user_id == user.id,
            "max_chars": notes.MAX_CHARS, "reads": teaching.reads_of(session, pred, user),
            "latest": {r.id for r in reviews.counting(pred)}}
