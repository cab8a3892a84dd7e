"""Review state kept in the database, so that the history and the review queue read one
page instead of aggregating every prediction and review per request (issue 25).

Two derived values, recomputed from the rows in the transaction of every write that can
change them (never by the request that reads them):

* ``predictions.review_state``: the prediction's state (:data:`STATES`, :func:`state_of`);
* ``image_review_states``: per image content (``image_sha256``, across its uploads) its
  place in the queue: oldest queued upload, uploads, distinct opinions, reason rank.

How they are kept: a session ``after_flush`` hook refreshes the images whose predictions
or reviews the flush added, changed or deleted (one image's handful of rows: a few ms);
ORM bulk statements on predictions or reviews (``session.execute(insert(Prediction), rows)``,
``query.delete()``) rebuild every image, as migration 0009 does. Raw SQL on those tables
bypasses both: call :func:`rebuild` after it. On PostgreSQL each refreshed image is locked
(transaction advisory lock) before it is read, so two reviews of one image committed at the
same time cannot each miss the other; SQLite serialises writers already.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import Connection, bindparam, delete, event, insert, inspect, select, text, update
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.orm.attributes import set_committed_value

from app.store.db.models import ImageReviewState, Prediction, Review

STATES = ("unreviewed", "agreed", "unknown", "discarded", "disagreement")
QUEUED_STATUSES = ("ok", "contributed")  # refusals and failures are no work for radiologists
# The queue's reasons by rank: disagreement, flagged by the model, not reviewed yet.
DISAGREEMENT, FLAGGED, NOT_REVIEWED = 0, 1, 2
_NO_LABEL = ("unknown", "discarded")
_CHUNK = 500  # image hashes per IN (...) list
# Prediction columns the image's queue state depends on.
_WATCHED = ("image_sha256", "status", "needs_review", "created_at")

P, R, S = Prediction.__table__, Review.__table__, ImageReviewState.__table__


def state_of(latest: Iterable[tuple[str, str | None]]) -> str:
    """The state (:data:`STATES`) given the ``(verdict, label)`` of each reviewer's latest
    review: agreed when every one names the same label; unknown / discarded when all said
    so; disagreement when labels differ or a label meets a "don't know" or a discard."""
    latest = list(latest)
    if not latest:
        return "unreviewed"
    verdicts = {v for v, _ in latest if v in _NO_LABEL}
    labels = {lab for v, lab in latest if v not in _NO_LABEL}
    if verdicts:
        return "disagreement" if labels or len(verdicts) > 1 else verdicts.pop()
    return "agreed" if len(labels) == 1 else "disagreement"


def _latest(rows: Iterable[Any], key: str) -> dict[Any, dict[int, Any]]:
    """Per ``key`` value, each reviewer's latest review (by time, then id)."""
    out: dict[Any, dict[int, Any]] = {}
    for r in sorted(rows, key=lambda r: (r.created_at, r.id)):
        out.setdefault(getattr(r, key), {})[r.reviewer_id] = r
    return out


def _image_row(sha: str, preds: Sequence[Any], latest: dict[int, Any]) -> dict | None:
    """The ``image_review_states`` row of one image, None when no upload can be queued."""
    queued = sorted((p for p in preds if p.status in QUEUED_STATUSES),
                    key=lambda p: (p.created_at, p.id))
    if not queued:
        return None
    opinions = len({r.label if r.label is not None else r.verdict for r in latest.values()})
    if opinions > 1:
        rank: int | None = DISAGREEMENT
    elif latest:
        rank = None  # reviewed, and the reviewers agree: not queued
    else:
        rank = FLAGGED if any(p.needs_review for p in queued) else NOT_REVIEWED
    return {"image_sha256": sha, "first_id": queued[0].id, "first_at": queued[0].created_at,
            "uploads": len(queued), "opinions": opinions, "rank": rank}


def _compute(conn: Connection, shas: Sequence[str] | None) -> tuple[dict[str, str], list]:
    """Prediction states that changed ({id: state}) and the image rows of ``shas`` (every
    image when None), read from the database."""
    where_p = [] if shas is None else [P.c.image_sha256.in_(shas)]
    preds = conn.execute(select(P.c.id, P.c.image_sha256, P.c.status, P.c.created_at,
                                P.c.needs_review, P.c.review_state).where(*where_p)).all()
    revs = conn.execute(
        select(P.c.image_sha256, R.c.prediction_id, R.c.reviewer_id, R.c.verdict, R.c.label,
               R.c.created_at, R.c.id).join(P, P.c.id == R.c.prediction_id).where(*where_p)
    ).all()
    by_pred, by_image = _latest(revs, "prediction_id"), _latest(revs, "image_sha256")
    changed = {}
    for p in preds:
        st = state_of((r.verdict, r.label) for r in by_pred.get(p.id, {}).values())
        if st != p.review_state:
            changed[p.id] = st
    grouped: dict[str, list[Any]] = {}
    for p in preds:
        grouped.setdefault(p.image_sha256, []).append(p)
    rows = [row for sha, ps in grouped.items()
            if (row := _image_row(sha, ps, by_image.get(sha, {}))) is not None]
    return changed, rows


def _write(session: Session, conn: Connection, changed: dict[str, str], rows: list,
           shas: Sequence[str] | None) -> None:
    if changed:
        conn.execute(update(P).where(P.c.id == bindparam("pid"))
                     .values(review_state=bindparam("st")),
                     [{"pid": pid, "st": st} for pid, st in changed.items()])
        for obj in list(session.identity_map.values()):  # loaded rows say it too
            if isinstance(obj, Prediction) and obj.id in changed:
                set_committed_value(obj, "review_state", changed[obj.id])
    conn.execute(delete(S) if shas is None else delete(S).where(S.c.image_sha256.in_(shas)))
    if rows:
        conn.execute(insert(S), rows)


def refresh(session: Session, shas: Iterable[str]) -> None:
    """Recompute the review state of the images ``shas`` and of their predictions."""
    conn = session.connection()
    ordered = sorted(set(shas))
    if conn.dialect.name == "postgresql":  # in one order: two writers never deadlock
        for sha in ordered:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 25))"),
                         {"k": sha})
    for i in range(0, len(ordered), _CHUNK):
        chunk = ordered[i:i + _CHUNK]
        changed, rows = _compute(conn, chunk)
        _write(session, conn, changed, rows, chunk)


def rebuild(session: Session) -> None:
    """Recompute every image and prediction (after bulk or raw SQL writes; migration 0009)."""
    conn = session.connection()
    changed, rows = _compute(conn, None)
    _write(session, conn, changed, rows, None)


def rebuild_connection(conn: Connection) -> None:
    """:func:`rebuild` on a bare connection (Alembic's)."""
    with Session(bind=conn) as session:
        rebuild(session)
        session.flush()


def _touched(session: Session) -> set[str]:
    """Image hashes whose state the pending flush may change."""
    shas: set[str] = set()
    prediction_ids: set[str] = set()
    for obj in chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, Prediction):
            attrs = inspect(obj).attrs
            if (obj in session.new or obj in session.deleted
                    or any(attrs[a].history.has_changes() for a in _WATCHED)):
                shas.add(obj.image_sha256)
                shas.update(v for v in attrs["image_sha256"].history.deleted or () if v)
        elif isinstance(obj, Review):
            prediction_ids.add(obj.prediction_id)
            old = inspect(obj).attrs["prediction_id"].history.deleted or ()
            prediction_ids.update(v for v in old if v)
    if prediction_ids:
        shas.update(session.connection().scalars(
            select(P.c.image_sha256).where(P.c.id.in_(sorted(prediction_ids)))))
    return shas


def _after_flush(session: Session, _context: Any) -> None:
    shas = _touched(session)
    if shas:
        refresh(session, shas)


def _bulk(state: ORMExecuteState) -> Any:
    """ORM bulk insert / update / delete on predictions or reviews: run it, then rebuild."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return None
    mapper = state.bind_mapper
    if mapper is None or mapper.class_ not in (Prediction, Review):
        return None
    result = state.invoke_statement()
    rebuild(state.session)
    return result


def install() -> None:
    """Keep the state on every Radio session (idempotent)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "do_orm_execute", _bulk)
