"""app/store/db/review_state.py: the review state kept in the database stays right after
every kind of write, and migration 0009 fills it from the rows already there."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from app.accounts import users
from app.clinical import records, review_queue, reviews
from app.platform.config import load_config
from app.store import db
from app.store.db import review_state
from app.store.db.models import ImageReviewState, Prediction, Review, User, utcnow

DISAGREE, FLAGGED, NOT_REVIEWED = 0, 1, 2  # the queue's reasons by rank, written out


def _pred(s, pid: str, sha: str, status: str = "ok", needs_review: bool = False,
          age_min: int = 0) -> Prediction:
    pred = Prediction(id=pid * 32, image_sha256=sha * 64, image_format="PNG", image_bytes=1,
                      status=status, label="Normal" if status == "ok" else None,
                      needs_review=needs_review,
                      probabilities={"COVID": 0.2, "Normal": 0.8} if status == "ok" else None,
                      created_at=utcnow() - timedelta(minutes=age_min))
    s.add(pred)
    return pred


def _images(s) -> dict[str, tuple[str, int, int, int | None]]:
    """{image hash's first letter: (first upload's first letter, uploads, opinions, rank)}."""
    s.flush()
    return {r.image_sha256[0]: (r.first_id[0], r.uploads, r.opinions, r.rank)
            for r in s.scalars(select(ImageReviewState))}


def _states(s) -> dict[str, str]:
    """{prediction id's first letter: review state}, read back from the database."""
    s.flush()
    return dict(s.execute(select(text("substr(id, 1, 1)"), Prediction.review_state)
                          .select_from(Prediction)).all())


def _later(review: Review, minutes: int) -> None:
    review.created_at = utcnow() + timedelta(minutes=minutes)


def test_recorded_predictions_and_duplicates(s):
    _pred(s, "1", "a", age_min=30)
    assert _images(s) == {"a": ("1", 1, 0, NOT_REVIEWED)}
    # records.record, as /predict calls it: a flagged second upload of the same film.
    records.record(s, load_config(), "2" * 32, None, "a" * 64, "PNG", 10,
                   result={"status": "ok", "label": "COVID", "needs_review": True})
    _pred(s, "3", "b", status="not_xray")  # refusals are not queued: no row
    _pred(s, "4", "c", status="error")
    assert _images(s) == {"a": ("1", 2, 0, FLAGGED)}
    assert _states(s) == {"1": "unreviewed", "2": "unreviewed", "3": "unreviewed",
                          "4": "unreviewed"}


def test_reviews_change_of_mind_third_reviewer_and_resolution(s):
    r1, r2, r3 = (users.create_user(s, f"r{i}", "radiologist") for i in (1, 2, 3))
    pred = _pred(s, "1", "a", needs_review=True, age_min=30)
    copy = _pred(s, "2", "a", age_min=10)
    s.flush()
    reviews.add(s, pred, r1, "validated", None, "")
    assert _images(s) == {"a": ("1", 2, 1, None)}  # reviewed, agreed: out of the queue
    assert _states(s) == {"1": "agreed", "2": "unreviewed"}
    _later(reviews.add(s, copy, r2, "corrected", "COVID", ""), 1)
    assert _images(s) == {"a": ("1", 2, 2, DISAGREE)}
    assert _states(s) == {"1": "agreed", "2": "agreed"}  # per prediction, one reviewer each
    # r1 changes their mind, twice: only the latest counts, r1 never disagrees with r1.
    _later(reviews.add(s, pred, r1, "corrected", "COVID", ""), 2)
    assert _images(s) == {"a": ("1", 2, 1, None)}
    _later(reviews.add(s, pred, r1, "unknown", None, ""), 3)
    assert _images(s) == {"a": ("1", 2, 2, DISAGREE)}
    assert _states(s)["1"] == "unknown"
    assert [e.prediction.id for e in review_queue.page(s, r3).entries] == [pred.id]
    # A third reviewer: still a disagreement, but no longer in the third reviewer's queue.
    _later(reviews.add(s, pred, r3, "corrected", "COVID", ""), 4)
    assert _images(s) == {"a": ("1", 2, 2, DISAGREE)}
    assert _states(s)["1"] == "disagreement"
    assert review_queue.page(s, r3).entries == []
    # r1 comes round to COVID: every latest review says COVID, the image leaves the queue.
    _later(reviews.add(s, pred, r1, "corrected", "COVID", ""), 5)
    assert _images(s) == {"a": ("1", 2, 1, None)}
    assert _states(s) == {"1": "agreed", "2": "agreed"}


def test_discard_and_dont_know_states(s):
    r1, r2 = (users.create_user(s, f"r{i}", "radiologist") for i in (1, 2))
    one, two = _pred(s, "1", "a"), _pred(s, "2", "b")
    s.flush()
    reviews.add(s, one, r1, "discarded", None, "a knee")
    reviews.add(s, two, r1, "unknown", None, "")
    assert _states(s) == {"1": "discarded", "2": "unknown"}
    assert _images(s) == {"a": ("1", 1, 1, None), "b": ("2", 1, 1, None)}
    reviews.add(s, two, r2, "discarded", None, "")
    assert _states(s)["2"] == "disagreement"
    assert _images(s)["b"] == ("2", 1, 2, DISAGREE)


def test_a_changed_or_deleted_prediction_moves_the_image(s):
    r1 = users.create_user(s, "r1", "radiologist")
    first = _pred(s, "1", "a", age_min=30)
    second = _pred(s, "2", "a", needs_review=True, age_min=10)
    assert _images(s) == {"a": ("1", 2, 0, FLAGGED)}
    s.delete(first)  # e.g. an account's predictions removed: the next upload shows it
    assert _images(s) == {"a": ("2", 1, 0, FLAGGED)}
    second.needs_review = False
    assert _images(s) == {"a": ("2", 1, 0, NOT_REVIEWED)}
    review = reviews.add(s, second, r1, "validated", None, "")
    assert _states(s) == {"2": "agreed"}
    s.delete(review)  # the review gone: unreviewed and queued again
    assert _states(s) == {"2": "unreviewed"}
    assert _images(s) == {"a": ("2", 1, 0, NOT_REVIEWED)}
    s.delete(second)
    assert _images(s) == {}


def test_contributions_labelled_or_not(s):
    """As app/datasets/datasets.py stores them: unlabelled ones wait in the queue as
    flagged, a labelled one is the contributor's own review."""
    rad = users.create_user(s, "r1", "radiologist")
    s.flush()
    for pid, sha, label in (("1", "a", ""), ("2", "b", "COVID")):
        pred = Prediction(id=pid * 32, user_id=rad.id, image_sha256=sha * 64,
                          image_format="PNG", image_bytes=1, status="contributed",
                          needs_review=not label)
        s.add(pred)
        s.flush()
        if label:
            reviews.add(s, pred, rad, "corrected", label, "")
    assert _images(s) == {"a": ("1", 1, 0, FLAGGED), "b": ("2", 1, 1, None)}
    assert _states(s) == {"1": "unreviewed", "2": "agreed"}


def test_bulk_statements_rebuild_the_state(s):
    r1 = users.create_user(s, "r1", "radiologist")
    s.flush()
    now = utcnow()
    s.execute(insert(Prediction), [
        {"id": c * 32, "image_sha256": sha * 64, "image_format": "PNG", "image_bytes": 1,
         "status": "ok", "label": "Normal", "needs_review": flagged,
         "created_at": now - timedelta(minutes=age)}
        for c, sha, flagged, age in (("1", "a", False, 9), ("2", "a", True, 5),
                                     ("3", "b", False, 1))])
    s.execute(insert(Review), [{"prediction_id": "3" * 32, "reviewer_id": r1.id,
                                "verdict": "validated", "label": "Normal", "comment": "",
                                "created_at": now}])
    assert _images(s) == {"a": ("1", 2, 0, FLAGGED), "b": ("3", 1, 1, None)}
    assert _states(s) == {"1": "unreviewed", "2": "unreviewed", "3": "agreed"}
    s.query(Review).delete()
    s.query(Prediction).filter(Prediction.image_sha256 == "a" * 64).delete()
    assert _images(s) == {"b": ("3", 1, 0, NOT_REVIEWED)}
    assert _states(s) == {"3": "unreviewed"}


def _sql_rows(url: str) -> None:
    """Rows written before 0009, by raw SQL: an agreed image uploaded twice (one upload
    refused), a disagreement where r1 changed their mind, a flagged one, an old refusal."""
    with db.get_engine(url).begin() as conn:
        for uid, name in ((1, "r1"), (2, "r2")):
            conn.execute(text(
                "INSERT INTO users (id, username, role, active, must_change_password, "
                "session_nonce, created_at) VALUES (:i, :n, 'radiologist', true, false, "
                "'n', CURRENT_TIMESTAMP)"), {"i": uid, "n": name})
        for pid, sha, status, flagged, minute in (
                ("1", "a", "ok", False, 1), ("2", "a", "not_xray", False, 2),
                ("3", "a", "ok", True, 3), ("4", "b", "ok", False, 4),
                ("5", "c", "ok", True, 5), ("6", "d", "error", False, 6)):
            conn.execute(text(
                "INSERT INTO predictions (id, created_at, site, image_sha256, image_format, "
                "image_bytes, status, needs_review) VALUES (:id, :at, '', :sha, 'PNG', 1, "
                ":st, :f)"), {"id": pid * 32, "sha": sha * 64, "st": status, "f": flagged,
                              "at": f"2026-01-01 10:0{minute}:00"})
        for pid, reviewer, verdict, label, minute in (
                ("1", 1, "validated", "Normal", 1), ("3", 2, "validated", "Normal", 2),
                ("4", 1, "corrected", "Normal", 3), ("4", 1, "corrected", "COVID", 4),
                ("4", 2, "validated", "Normal", 5)):
            conn.execute(text(
                "INSERT INTO reviews (prediction_id, reviewer_id, verdict, label, comment, "
                "created_at) VALUES (:p, :r, :v, :l, '', :at)"),
                {"p": pid * 32, "r": reviewer, "v": verdict, "l": label,
                 "at": f"2026-01-01 11:0{minute}:00"})


def test_migration_0009_fills_the_state_from_existing_rows(db_url):
    db.migrate(db_url, revision="0008")
    _sql_rows(db_url)
    db.dispose_all()
    db.migrate(db_url)
    with db.session_scope(db_url) as s:
        migrated = (_images(s), _states(s))
        assert migrated == (
            {"a": ("1", 2, 1, None), "b": ("4", 1, 2, DISAGREE), "c": ("5", 1, 0, FLAGGED)},
            {"1": "agreed", "2": "unreviewed", "3": "agreed", "4": "disagreement",
             "5": "unreviewed", "6": "unreviewed"})
        review_state.rebuild(s)  # a fresh computation gives the same
        assert (_images(s), _states(s)) == migrated


def test_two_reviews_committed_at_once_both_count_on_postgresql(postgres):
    """Two radiologists disagree in two transactions open at the same time: the second
    waits for the first's image lock, then sees its review (without the lock each would
    miss the other and the image would leave the queue as if they agreed)."""
    import threading
    import time

    url = postgres.new_database()
    db.migrate(url)
    with db.session_scope(url) as s:
        for name in ("r1", "r2"):
            users.create_user(s, name, "radiologist")
        _pred(s, "1", "a")
    first, second = (Session(db.get_engine(url), expire_on_commit=False) for _ in range(2))
    r1, r2 = (first.scalar(select(User).where(User.username == n)) for n in ("r1", "r2"))
    reviews.add(first, first.get(Prediction, "1" * 32), r1, "validated", None, "")
    first.flush()  # holds the image's lock until it commits
    done = threading.Event()

    def review_in_second() -> None:
        # One flush, then the commit (reviews.add flushes twice: its second refresh, at the
        # commit, would hide a missing lock).
        second.add(Review(prediction_id="1" * 32, reviewer_id=r2.id, verdict="corrected",
                          label="COVID", comment=""))
        second.commit()
        done.set()

    worker = threading.Thread(target=review_in_second, daemon=True)
    worker.start()
    give_up = time.monotonic() + 60  # a guard against a dead worker, not a measurement
    with db.get_engine(url).connect() as conn:  # the second transaction waits on the lock
        while worker.is_alive() and time.monotonic() < give_up and not conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%pg_advisory_xact_lock%'")).scalar():
            conn.rollback()
    assert not done.is_set()
    first.commit()
    worker.join(30)
    first.close()
    second.close()
    with db.session_scope(url) as s:
        assert _images(s) == {"a": ("1", 1, 2, DISAGREE)}
        assert _states(s) == {"1": "disagreement"}
