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

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from app.store.db.models import ImageReviewState, Prediction, Review, User

# Why an image is queued, by rank (the order of the queue; ImageReviewState.rank).
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


def _waiting(reviewer: User) -> Select[tuple[ImageReviewState]]:
    """Images queued for ``reviewer`` (kept by app/store/db/review_state.py): any image
    nobody reviewed, and the disagreements they have not reviewed on any upload. An outer
    join, not NOT EXISTS: the databases plan it as one hash anti-join (PostgreSQL costed a
    correlated ``OR NOT EXISTS`` so high that it compiled the query with JIT, 200 ms)."""
    mine = (select(Prediction.image_sha256.label("sha"))
            .join(Review, Review.prediction_id == Prediction.id)
            .join(ImageReviewState, ImageReviewState.image_sha256 == Prediction.image_sha256)
            .where(Review.reviewer_id == reviewer.id, ImageReviewState.rank == 0)
            .distinct().subquery())
    return (select(ImageReviewState)
            .outerjoin(mine, mine.c.sha == ImageReviewState.image_sha256)
            .where(ImageReviewState.rank.is_not(None), mine.c.sha.is_(None)))


def _opinions(session: Session, shas: list[str]) -> dict[str, list[tuple[str, str, str | None]]]:
    """Per image, each reviewer's latest review (reviewer, verdict, label), by name."""
    latest: dict[str, dict[str, tuple[str, str, str | None]]] = {}
    for sha, name, verdict, label in session.execute(
            select(Prediction.image_sha256, User.username, Review.verdict, Review.label)
            .join(Review, Review.prediction_id == Prediction.id)
            .join(User, User.id == Review.reviewer_id)
            .where(Prediction.image_sha256.in_(shas))
            .order_by(Review.created_at, Review.id)):
        latest.setdefault(sha, {})[name] = (name, verdict, label)
    return {sha: sorted(by_name.values()) for sha, by_name in latest.items()}


def page(session: Session, reviewer: User, number: int = 1, size: int = 25) -> Page:
    """Page ``number`` (from 1) of ``reviewer``'s queue."""
    waiting = _waiting(reviewer)
    by_rank = dict(session.execute(
        waiting.with_only_columns(ImageReviewState.rank, func.count())
        .group_by(ImageReviewState.rank)).all())
    counts = {reason: int(by_rank.get(i, 0)) for i, reason in enumerate(REASONS)}
    total = sum(counts.values())
    pages = max(1, -(-total // size))
    number = min(max(1, number), pages)
    rows = session.scalars(
        waiting.order_by(ImageReviewState.rank, ImageReviewState.first_at,
                  ImageReviewState.image_sha256)
        .limit(size).offset((number - 1) * size)).all()
    if not rows:
        return Page([], counts, total, number, pages)
    firsts = {p.id: p for p in session.scalars(
        select(Prediction).where(Prediction.id.in_([r.first_id for r in rows]))
        .options(selectinload(Prediction.user), selectinload(Prediction.reviews)))}
    opinions = _opinions(session, [r.image_sha256 for r in rows])
    entries = [Entry(firsts[r.first_id], r.uploads, REASONS[r.rank or 0], r.first_at,
                     opinions.get(r.image_sha256, [])) for r in rows]
    return Page(entries, counts, total, number, pages)


def next_case(session: Session, reviewer: User) -> Prediction | None:
    """The first image of ``reviewer``'s queue, or None when it is empty."""
    entries = page(session, reviewer, 1, 1).entries
    return entries[0].prediction if entries else None
