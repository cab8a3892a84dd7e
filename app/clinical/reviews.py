"""Radiologists' verdicts on predictions, and what they add up to.

Each radiologist's latest review of a prediction counts (a second opinion by the same
person replaces the first). The state of a prediction is:

* ``unreviewed``: nobody reviewed it;
* ``agreed``: every counting review names the same label (validated or corrected to it);
* ``unknown``: the reviewers said "don't know";
* ``discarded``: the reviewers said it is not a chest X-ray (or unusable);
* ``disagreement``: reviewers named different labels, or one said "don't know" (or
  discarded it) while another named a label.

Only ``agreed`` images may enter a dataset.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Subquery, case, distinct, func, select
from sqlalchemy.orm import Session

from app.accounts import audit
from app.platform import metrics
from app.store.db import review_state
from app.store.db.models import VERDICTS, Prediction, Review, User

# Every class a Radio model has named (models before the fourth class have the first three);
# pages list a record's own classes, from its probabilities, and these where it has none.
KNOWN_CLASSES = ("COVID", "Viral Pneumonia", "Other Abnormal", "Normal")
STATES = review_state.STATES
# The verdicts as the pages say them.
VERDICT_WORDS = {"validated": "validated", "corrected": "correction",
                 "unknown": "don't know", "discarded": "not a chest X-ray / discarded"}


class ReviewError(ValueError):
    """A review that cannot be accepted; the message is for the radiologist."""


def counting(pred: Prediction) -> list[Review]:
    """The latest review of each reviewer."""
    latest: dict[int, Review] = {}
    for review in sorted(pred.reviews, key=lambda r: (r.created_at, r.id)):
        latest[review.reviewer_id] = review
    return list(latest.values())


def state(pred: Prediction) -> str:
    """One of :data:`STATES`."""
    return review_state.state_of((r.verdict, r.label) for r in counting(pred))


def final_label(pred: Prediction) -> str | None:
    """The agreed label, or None when there is no agreement."""
    if state(pred) != "agreed":
        return None
    return counting(pred)[0].label


def latest_reviews() -> Subquery:
    """Each reviewer's latest review of each prediction, as a subquery with the columns
    ``prediction_id, reviewer_id, verdict, label`` (the SQL twin of :func:`counting`)."""
    ranked = select(
        Review.prediction_id, Review.reviewer_id, Review.verdict, Review.label,
        func.row_number().over(partition_by=(Review.prediction_id, Review.reviewer_id),
                               order_by=(Review.created_at.desc(), Review.id.desc()))
        .label("nth"),
    ).subquery()
    return select(ranked).where(ranked.c.nth == 1).subquery()


def agreed_labels() -> Subquery:
    """``prediction_id, label`` of the predictions whose state is ``agreed``: the SQL twin
    of :func:`final_label`."""
    latest = latest_reviews()
    no_label = func.sum(case((latest.c.verdict.in_(("unknown", "discarded")), 1), else_=0))
    return (select(latest.c.prediction_id, func.max(latest.c.label).label("label"))
            .group_by(latest.c.prediction_id)
            .having((no_label == 0) & (func.count(distinct(latest.c.label)) == 1))
            .subquery())


def where_state(wanted: str) -> ColumnElement[bool]:
    """A SQL condition on predictions: their :func:`state` is ``wanted`` (one of
    :data:`STATES`), as kept in ``predictions.review_state`` on every review
    (``app.store.db.review_state``; indexed with the creation time)."""
    return Prediction.review_state == wanted


def classes_of(pred: Prediction) -> list[str]:
    """The classes a reviewer may name for ``pred``: its model's, in the model's order."""
    return list(pred.probabilities or {}) or list(KNOWN_CLASSES)


def describe(pred: Prediction) -> str:
    """The review state in words; a correction is called a correction."""
    st = state(pred)
    if st == "unreviewed":
        return "Not reviewed yet"
    if st == "unknown":
        return "Reviewed: the radiologist could not tell"
    if st == "discarded":
        return "Discarded by a radiologist: not a chest X-ray or unusable"
    if st == "disagreement":
        return "Reviewed: radiologists disagree"
    final = final_label(pred)
    if pred.status == "ok" and final == pred.label:
        return f"Validated by a radiologist: {final}"
    if pred.status == "ok":
        return f"Corrected by a radiologist to {final} (Radio said {pred.label})"
    return f"Labelled by a radiologist: {final}"


def add(
    session: Session, pred: Prediction, reviewer: User, verdict: str, label: str | None,
    comment: str, ip: str = "",
) -> Review:
    """Record a review (validated: the model's label; corrected: ``label``; unknown;
    discarded: not a chest X-ray or unusable, kept out of every dataset)."""
    comment = (comment or "").strip()[:2000]
    if verdict not in VERDICTS:
        raise ReviewError(f"The verdict must be one of {', '.join(VERDICTS)}.")
    if verdict == "validated":
        if pred.status != "ok" or pred.label is None:
            raise ReviewError("There is no model answer to validate; correct it instead.")
        label = pred.label
    elif verdict == "corrected":
        classes = classes_of(pred)
        if label not in classes:
            raise ReviewError(f"Choose the correct label among {', '.join(classes)}.")
    else:
        label = None
    review = Review(prediction_id=pred.id, reviewer_id=reviewer.id, verdict=verdict,
                    label=label, comment=comment)
    session.add(review)
    pred.reviews.append(review)
    audit.log(session, "review", user_id=reviewer.id, target=pred.id, ip=ip,
              detail={"verdict": verdict, "label": label})
    metrics.REVIEWS.labels(verdict=verdict).inc()
    return review
