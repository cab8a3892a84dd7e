"""app/clinical/review_queue.py: one entry per image, refusals out, order, counts, paging."""

from __future__ import annotations

from datetime import timedelta

from app.accounts import users
from app.clinical import review_queue, reviews
from app.store.db.models import Prediction, utcnow


def _pred(s, pid: str, sha: str, needs_review: bool = False, status: str = "ok",
          age_min: int = 0) -> Prediction:
    pred = Prediction(id=pid, image_sha256=sha * 64, image_format="PNG", image_bytes=1,
                      status=status, label="Normal" if status == "ok" else None,
                      needs_review=needs_review,
                      probabilities={"COVID": 0.2, "Normal": 0.8} if status == "ok" else None,
                      created_at=utcnow() - timedelta(minutes=age_min))
    s.add(pred)
    return pred


def _ids(page):
    return [e.prediction.id for e in page.entries]


def test_order_reasons_duplicates_and_what_leaves_it(s):
    r1 = users.create_user(s, "r1", "radiologist")
    r2 = users.create_user(s, "r2", "radiologist")
    plain = _pred(s, "1" * 32, "a", age_min=50)
    _pred(s, "6" * 32, "a", age_min=20)  # the same image again: one entry, 2 uploads
    flagged = _pred(s, "2" * 32, "b", needs_review=True, age_min=10)
    disputed = _pred(s, "3" * 32, "c", age_min=5)
    done = _pred(s, "4" * 32, "d", age_min=40)
    _pred(s, "7" * 32, "d", age_min=1)  # a copy of a reviewed image is not queued again
    _pred(s, "5" * 32, "e", status="error")
    _pred(s, "8" * 32, "f", status="not_xray")  # refusals are no work for radiologists
    s.flush()
    reviews.add(s, disputed, r1, "validated", None, "")
    reviews.add(s, disputed, r2, "corrected", "COVID", "")
    reviews.add(s, done, r1, "validated", None, "")
    s.flush()
    r3 = users.create_user(s, "r3", "radiologist")
    page = review_queue.page(s, r3)
    assert _ids(page) == [disputed.id, flagged.id, plain.id]
    assert [e.reason for e in page.entries] == [
        "radiologists disagree", "flagged by the model", "not reviewed yet"]
    assert [e.uploads for e in page.entries] == [1, 1, 2]
    assert page.counts == {"radiologists disagree": 1, "flagged by the model": 1,
                           "not reviewed yet": 1}
    assert (page.total, page.pages) == (3, 1)
    # Nobody is asked again about what they already reviewed.
    assert _ids(review_queue.page(s, r1)) == [flagged.id, plain.id]
    assert review_queue.next_case(s, r1).id == flagged.id
    reviews.add(s, flagged, r1, "discarded", None, "a knee")
    s.flush()
    assert _ids(review_queue.page(s, r1)) == [plain.id]
    assert _ids(review_queue.page(s, r3)) == [disputed.id, plain.id]


def test_pages_of_the_queue(s):
    rad = users.create_user(s, "r1", "radiologist")
    for i in range(5):
        _pred(s, f"{i}" * 32, "abcde"[i], age_min=10 - i)
    s.flush()
    first, last = review_queue.page(s, rad, 1, 2), review_queue.page(s, rad, 3, 2)
    assert _ids(first) == ["0" * 32, "1" * 32] and (first.total, first.pages) == (5, 3)
    assert _ids(last) == ["4" * 32] and last.page == 3
    assert review_queue.page(s, rad, 9, 2).page == 3  # past the end: the last page
    s.query(Prediction).delete()
    s.flush()
    assert review_queue.next_case(s, rad) is None


def test_only_each_reviewers_latest_review_counts_and_shows(s):
    """A radiologist who changes their mind does not disagree with themselves: the image
    leaves the queue, and a real disagreement shows each reviewer's latest review only."""
    r1 = users.create_user(s, "r1", "radiologist")
    r2 = users.create_user(s, "r2", "radiologist")
    r3 = users.create_user(s, "r3", "radiologist")
    changed = _pred(s, "1" * 32, "a", age_min=30)
    copy = _pred(s, "2" * 32, "a", age_min=20)  # the same image again
    disputed = _pred(s, "3" * 32, "b", age_min=10)
    s.flush()
    first = reviews.add(s, changed, r1, "corrected", "COVID", "")
    first.created_at = utcnow() - timedelta(minutes=5)
    reviews.add(s, copy, r1, "validated", None, "on second look")  # the latest: Normal
    old = reviews.add(s, disputed, r1, "corrected", "COVID", "")
    old.created_at = utcnow() - timedelta(minutes=5)
    reviews.add(s, disputed, r1, "unknown", None, "")
    reviews.add(s, disputed, r2, "validated", None, "")
    s.flush()
    page = review_queue.page(s, r3)
    assert _ids(page) == [disputed.id]
    assert page.entries[0].reason == "radiologists disagree"
    assert page.entries[0].opinions == [("r1", "unknown", None), ("r2", "validated", "Normal")]
