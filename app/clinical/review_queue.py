"""The radiologists' review queue, computed by SQL with paging (never a Python loop over the
whole predictions table).

One entry per image content (``image_sha256``): the same film uploaded three times is one
entry ("3 uploads"), shown through its oldest upload. Refused images (not a chest X-ray)
and failed analyses are not queued. An image leaves the queue once reviewed, unless its
reviewers disagree; then it waits for radiologists who have not reviewed it. Only each
reviewer's latest review of an image counts (a radiologist who changes their mind does not
disagree with themselves), and an entry shows those latest reviews only. Order:
disagreements, then images the model flagged, then the rest; oldest first inside each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.store.db.models import Prediction, Review, User

QUEUED_STATUSES = ("ok", "contributed")
# Why an image is queued, by rank (the order of the queue).
REASONS = ("radiologists disagree", "flagged by the model", "not reviewed yet")


@dataclass(frozen=True)
class Entry:
    """One image to review: its oldest upload, how many uploads, why it is queued."""

    prediction: Prediction
    uploads: int
    reason: str
    first_at: datetime
    # (reviewer, verdict, label) of each reviewer's latest review of the image, by name.
    opinions: list[tuple[str, str, str | None]] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    """A page of the queue and the counts of the whole queue by reason."""

    entries: list[Entry]
    counts: dict[str, int]
    total: int
    page: int
    pages: int


def _latest():
    """Each reviewer's latest review of each image (by hash, across its uploads)."""
    ranked = (
        select(Prediction.image_sha256.label("sha"), Review.reviewer_id, Review.verdict,
               Review.label,
               func.row_number().over(
                   partition_by=(Prediction.image_sha256, Review.reviewer_id),
                   order_by=(Review.created_at.desc(), Review.id.desc())).label("nth"))
        .join(Review, Review.prediction_id == Prediction.id)
        .subquery()
    )
    return select(ranked).where(ranked.c.nth == 1).subquery()


def _waiting(reviewer: User):
    """Per image hash still to review by ``reviewer``: first upload, uploads, rank."""
    latest = _latest()
    reviewed = (
        select(latest.c.sha,
               func.count(distinct(func.coalesce(latest.c.label, latest.c.verdict)))
               .label("opinions"),
               func.max(case((latest.c.reviewer_id == reviewer.id, 1), else_=0)).label("mine"))
        .group_by(latest.c.sha)
        .subquery()
    )
    images = (
        select(Prediction.image_sha256.label("sha"),
               func.min(Prediction.created_at).label("first_at"),
               func.count(Prediction.id).label("uploads"),
               func.max(case((Prediction.needs_review, 1), else_=0)).label("flagged"))
        .where(Prediction.status.in_(QUEUED_STATUSES))
        .group_by(Prediction.image_sha256)
        .subquery()
    )
    rank = case((reviewed.c.opinions > 1, 0), (images.c.flagged == 1, 1), else_=2)
    return (
        select(images.c.sha, images.c.first_at, images.c.uploads, rank.label("rank"))
        .outerjoin(reviewed, reviewed.c.sha == images.c.sha)
        .where(or_(reviewed.c.sha.is_(None),
                   and_(reviewed.c.opinions > 1, reviewed.c.mine == 0)))
        .subquery()
    )


def page(session: Session, reviewer: User, number: int = 1, size: int = 25) -> Page:
    """Page ``number`` (from 1) of ``reviewer``'s queue."""
    waiting = _waiting(reviewer)
    by_rank = dict(session.execute(
        select(waiting.c.rank, func.count()).group_by(waiting.c.rank)).all())
    counts = {reason: int(by_rank.get(i, 0)) for i, reason in enumerate(REASONS)}
    total = sum(counts.values())
    pages = max(1, -(-total // size))
    number = min(max(1, number), pages)
    rows = session.execute(
        select(waiting).order_by(waiting.c.rank, waiting.c.first_at, waiting.c.sha)
        .limit(size).offset((number - 1) * size)).all()
    firsts: dict[str, Prediction] = {}
    if rows:
        preds = session.scalars(
            select(Prediction)
            .where(Prediction.image_sha256.in_([r.sha for r in rows]),
                   Prediction.status.in_(QUEUED_STATUSES))
            .options(selectinload(Prediction.user), selectinload(Prediction.reviews))
            .order_by(Prediction.created_at, Prediction.id)).all()
        for pred in preds:
            firsts.setdefault(pred.image_sha256, pred)
    opinions: dict[str, list[tuple[str, str, str | None]]] = {}
    if rows:
        latest = _latest()
        for sha, name, verdict, label in session.execute(
                select(latest.c.sha, User.username, latest.c.verdict, latest.c.label)
                .join(User, User.id == latest.c.reviewer_id)
                .where(latest.c.sha.in_([r.sha for r in rows]))
                .order_by(latest.c.sha, User.username)):
            opinions.setdefault(sha, []).append((name, verdict, label))
    entries = [Entry(firsts[r.sha], int(r.uploads), REASONS[int(r.rank)], r.first_at,
                     opinions.get(r.sha, [])) for r in rows]
    return Page(entries, counts, total, number, pages)


def next_case(session: Session, reviewer: User) -> Prediction | None:
    """The first image of ``reviewer``'s queue, or None when it is empty."""
    entries = page(session, reviewer, 1, 1).entries
    return entries[0].prediction if entries else None
