"""Radiologists' verdicts on predictions, and what they add up to.

Each radiologist's latest review of a prediction counts (a second opinion by the same
person replaces the first). The state of a prediction is:

* ``unreviewed``: nobody reviewed it;
* ``agreed``: every counting review names the same label (validated or corrected to it);
* ``unknown``: the reviewers said "don't know";
* ``disagreement``: reviewers named different labels, or one said "don't know" while
  another named a label.

Only ``agreed`` images may enter a dataset.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app import audit, metrics
from app.db.models import VERDICTS, Prediction, Review, User

# Every answer Radio knows; a corrected label must be one of these. "Other Abnormal" (an
# abnormal film that is neither COVID nor viral pneumonia) came with the four-class models;
# a three-class version's records keep their answers.
KNOWN_CLASSES = ("COVID", "Normal", "Viral Pneumonia", "Other Abnormal")
STATES = ("unreviewed", "agreed", "unknown", "disagreement")


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
    reviews = counting(pred)
    if not reviews:
        return "unreviewed"
    unknown = any(r.verdict == "unknown" for r in reviews)
    labels = {r.label for r in reviews if r.verdict != "unknown"}
    if unknown:
        return "disagreement" if labels else "unknown"
    return "agreed" if len(labels) == 1 else "disagreement"


def final_label(pred: Prediction) -> str | None:
    """The agreed label, or None when there is no agreement."""
    if state(pred) != "agreed":
        return None
    return counting(pred)[0].label


def add(
    session: Session, pred: Prediction, reviewer: User, verdict: str, label: str | None,
    comment: str, ip: str = "",
) -> Review:
    """Record a review (validated: the model's label; corrected: ``label``; unknown)."""
    comment = (comment or "").strip()[:2000]
    if verdict not in VERDICTS:
        raise ReviewError(f"The verdict must be one of {', '.join(VERDICTS)}.")
    if verdict == "validated":
        if pred.status != "ok" or pred.label is None:
            raise ReviewError("There is no model answer to validate; correct it instead.")
        label = pred.label
    elif verdict == "corrected":
        classes = sorted(pred.probabilities or {}) or list(KNOWN_CLASSES)
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


def queue(session: Session, reviewer: User, limit: int = 100) -> list[Prediction]:
    """What ``reviewer`` should look at: disagreements, then needs-review, then the rest of
    the unreviewed images, oldest first inside each group; never what they reviewed."""
    preds = session.scalars(
        select(Prediction)
        .where(Prediction.status.in_(("ok", "not_xray", "contributed")))
        .options(selectinload(Prediction.reviews))
        .order_by(Prediction.created_at)
    ).all()
    todo = []
    for pred in preds:
        st = state(pred)
        if st not in ("unreviewed", "disagreement"):
            continue
        if any(r.reviewer_id == reviewer.id for r in pred.reviews):
            continue
        rank = 0 if st == "disagreement" else 1 if pred.needs_review else 2
        todo.append((rank, pred))
    todo.sort(key=lambda item: item[0])  # stable: keeps the date order inside a group
    return [pred for _, pred in todo[:limit]]
