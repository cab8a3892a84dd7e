"""The teaching loop: a clinician records their own read before seeing Radio's answer, a
radiologist validates the case, and the clinician learns from the three reads side by side.

A case analysed in teaching mode gets a ``teaching_reads`` row at once, with no label: while
the label is empty, every page and answer for its clinician leaves Radio's answer out. The
read is recorded once, and never changed afterwards (it would no longer be a read made
blind). Agreement with radiologists is computed in the database, per month of the reads,
for the clinician and for Radio on the same cases. Nothing here knows about Flask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from app.accounts import audit
from app.clinical import answer, reviews
from app.platform.failures import NotAllowed
from app.store.db.models import Prediction, TeachingRead, User, utcnow


class TeachingError(ValueError):
    """A read that cannot be recorded; the message is for the clinician."""


# What the answer of a blinded case may say: nothing the model concluded.
BLINDED_FIELDS = ("id", "status", "model")


def blind(session: Session, pred: Prediction, user: User) -> TeachingRead | None:
    """Hide ``pred``'s answer from ``user`` until they record a read; None when there is no
    diagnosis to hide (a refusal or an error is shown as it is)."""
    if pred.status != "ok" or pred.label is None:
        return None
    if pred.user_id != user.id:
        raise NotAllowed("Only the clinician who asked for this analysis can read it.")
    row = TeachingRead(prediction_id=pred.id, user_id=user.id)
    session.add(row)
    return row


def blinded_answer(result: dict[str, Any], classes: list[str]) -> dict[str, Any]:
    """What ``POST /teaching/predict`` answers for a blinded case: the reference, the model
    and the classes to choose from; no label, probabilities, heatmap or review flag."""
    kept = {key: result[key] for key in BLINDED_FIELDS if key in result}
    return kept | {"status": "awaiting_read", "classes": classes}


def awaits_read(session: Session, pred: Prediction, user: User) -> bool:
    """True while ``user`` must record a read before seeing ``pred``'s answer."""
    row = session.get(TeachingRead, pred.id)
    return row is not None and row.user_id == user.id and row.label is None


def awaiting(session: Session, user: User, pred_ids: list[str]) -> set[str]:
    """Which of ``pred_ids`` still hide their answer from ``user``."""
    if not pred_ids:
        return set()
    return set(session.scalars(select(TeachingRead.prediction_id).where(
        TeachingRead.prediction_id.in_(pred_ids), TeachingRead.user_id == user.id,
        TeachingRead.label.is_(None))))


def not_awaiting(user: User) -> ColumnElement[bool]:
    """A SQL condition on predictions: none hides its answer from ``user`` (a filter on
    Radio's label must not reveal the answer of a case still to be read)."""
    return ~Prediction.id.in_(select(TeachingRead.prediction_id).where(
        TeachingRead.user_id == user.id, TeachingRead.label.is_(None)))


def record(session: Session, pred: Prediction, user: User, label: str,
           ip: str = "") -> TeachingRead:
    """Record ``user``'s read of ``pred``: one of the model's classes, once. Another
    clinician's teaching case is NotAllowed (403); the rest are TeachingError (409)."""
    row = session.get(TeachingRead, pred.id)
    if row is not None and row.user_id != user.id:
        raise NotAllowed("Only the clinician who asked for this analysis can read it.")
    if row is None:
        raise TeachingError("This case was not analysed in teaching mode for you.")
    if row.label is not None:
        raise TeachingError(f"Your read of this case is already recorded: {row.label}.")
    classes = reviews.classes_of(pred)
    if label not in classes:
        raise TeachingError(f"Choose your read among {', '.join(classes)}.")
    row.label, row.read_at = label, utcnow()
    audit.log(session, "teaching_read", user_id=user.id, target=pred.id, ip=ip)
    return row


def full_answer(pred: Prediction) -> dict[str, Any]:
    """The answer of a stored prediction, as ``POST /predict`` gave it (for the Analyse
    page once the read is recorded)."""
    return {
        "id": pred.id, "status": pred.status, "label": pred.label,
        "probabilities": pred.probabilities, "confidence": pred.confidence,
        "needs_review": pred.needs_review, "review_reasons": pred.review_reasons or [],
        "heatmap": pred.heatmap, "ood_reason": pred.ood_reason, "ood_score": pred.ood_score,
        "model": {"name": pred.model_name, "version": pred.model_version},
        "decision": pred.decision, "explanation": answer.of_record(pred),
        "latency_ms": pred.latency_ms,
    }


@dataclass(frozen=True)
class Reads:
    """One case's three reads: the clinician's, Radio's, the radiologists' (None until they
    agree on a label; ``review`` says where the review stands)."""

    clinician: str
    radio: str | None
    radiologist: str | None
    review: str
    read_at: datetime | None


def reads_of(session: Session, pred: Prediction, user: User) -> Reads | None:
    """The three reads of ``pred`` for its clinician ``user``; None if they made no read."""
    row = session.get(TeachingRead, pred.id)
    if row is None or row.user_id != user.id or row.label is None:
        return None
    return Reads(row.label, pred.label, reviews.final_label(pred), reviews.describe(pred),
                 row.read_at)


@dataclass(frozen=True)
class Period:
    """A month of reads that radiologists settled: how many, and how many agreed."""

    month: str  # YYYY-MM
    cases: int
    mine: int  # the clinician's read = the radiologists' label
    radio: int  # Radio's label = the radiologists' label, on the same cases


def _month(session: Session, column: Any) -> Any:
    """``YYYY-MM`` of a UTC timestamp column, in this database's SQL dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


def agreement(session: Session, user: User) -> list[Period]:
    """Per month of ``user``'s reads (oldest first): the cases radiologists settled, and how
    often the user's read and Radio's answer named the radiologists' label."""
    final = reviews.agreed_labels()
    month = _month(session, TeachingRead.read_at).label("month")
    rows = session.execute(
        select(month, func.count(),
               func.sum(case((TeachingRead.label == final.c.label, 1), else_=0)),
               func.sum(case((Prediction.label == final.c.label, 1), else_=0)))
        .join(final, final.c.prediction_id == TeachingRead.prediction_id)
        .join(Prediction, Prediction.id == TeachingRead.prediction_id)
        .where(TeachingRead.user_id == user.id, TeachingRead.label.is_not(None))
        .group_by(month).order_by(month)).all()
    return [Period(str(m), int(n), int(mine or 0), int(radio or 0)) for m, n, mine, radio in rows]


@dataclass(frozen=True)
class Case:
    """One read case on the personal page."""

    prediction_id: str
    read_at: datetime
    clinician: str
    radio: str | None
    radiologist: str | None


def recent(session: Session, user: User, limit: int = 50) -> tuple[list[Case], int]:
    """``user``'s latest read cases with the radiologists' label where they agreed on one,
    newest first; and how many reads in all."""
    final = reviews.agreed_labels()
    rows = session.execute(
        select(TeachingRead.prediction_id, TeachingRead.read_at, TeachingRead.label,
               Prediction.label, final.c.label)
        .join(Prediction, Prediction.id == TeachingRead.prediction_id)
        .outerjoin(final, final.c.prediction_id == TeachingRead.prediction_id)
        .where(TeachingRead.user_id == user.id, TeachingRead.label.is_not(None))
        .order_by(TeachingRead.read_at.desc(), TeachingRead.prediction_id)
        .limit(limit)).all()
    total = session.scalar(select(func.count()).select_from(TeachingRead).where(
        TeachingRead.user_id == user.id, TeachingRead.label.is_not(None))) or 0
    return [Case(*row) for row in rows], int(total)
