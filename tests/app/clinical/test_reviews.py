"""app/clinical/reviews.py: verdicts, the state they add up to, and the queue order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.accounts import users
from app.clinical import reviews
from app.store.db.models import AuditEntry, Prediction, utcnow


def _pred(s, pid: str, label: str | None = "Normal", needs_review: bool = False,
          status: str = "ok", age_min: int = 0) -> Prediction:
    pred = Prediction(id=pid, image_sha256="0" * 64, image_format="PNG", image_bytes=1,
                      status=status, label=label, needs_review=needs_review,
                      probabilities={"COVID": 0.2, "Normal": 0.8} if status == "ok" else None,
                      created_at=utcnow() - timedelta(minutes=age_min))
    s.add(pred)
    return pred


def test_states_from_verdicts(s):
    r1 = users.create_user(s, "r1", "radiologist")
    r2 = users.create_user(s, "r2", "radiologist")
    pred = _pred(s, "a" * 32)
    s.flush()
    assert reviews.state(pred) == "unreviewed"
    reviews.add(s, pred, r1, "validated", None, "")
    assert reviews.state(pred) == "agreed" and reviews.final_label(pred) == "Normal"
    reviews.add(s, pred, r2, "corrected", "COVID", "ground glass")
    assert reviews.state(pred) == "disagreement" and reviews.final_label(pred) is None
    # r2 changes their mind: their latest review is the one that counts.
    reviews.add(s, pred, r2, "validated", None, "")
    assert reviews.state(pred) == "agreed"
    reviews.add(s, pred, r1, "unknown", None, "poor film")
    assert reviews.state(pred) == "disagreement"
    other = _pred(s, "b" * 32)
    s.flush()
    reviews.add(s, other, r1, "unknown", None, "")
    assert reviews.state(other) == "unknown"
    s.flush()
    audit = [(e.action, e.detail["verdict"]) for e in s.scalars(select(AuditEntry))
             if e.action == "review"]
    assert len(audit) == 5 and audit[1] == ("review", "corrected")


def test_bad_verdicts_are_refused(s):
    r1 = users.create_user(s, "r1", "radiologist")
    pred = _pred(s, "a" * 32)
    refused = _pred(s, "b" * 32, label=None, status="not_xray")
    s.flush()
    with pytest.raises(reviews.ReviewError):
        reviews.add(s, pred, r1, "maybe", None, "")
    with pytest.raises(reviews.ReviewError, match="among"):
        reviews.add(s, pred, r1, "corrected", "Cat", "")
    with pytest.raises(reviews.ReviewError, match="validate"):
        reviews.add(s, refused, r1, "validated", None, "")
    # A refused image can still be labelled by correcting it to a known class.
    reviews.add(s, refused, r1, "corrected", "Viral Pneumonia", "")
    assert reviews.final_label(refused) == "Viral Pneumonia"


def test_discard_and_the_words_for_each_state(s):
    r1 = users.create_user(s, "r1", "radiologist")
    r2 = users.create_user(s, "r2", "radiologist")
    pred, other, third = _pred(s, "a" * 32), _pred(s, "b" * 32), _pred(s, "c" * 32)
    s.flush()
    assert reviews.describe(pred) == "Not reviewed yet"
    reviews.add(s, pred, r1, "discarded", "Normal", "a knee")
    assert reviews.state(pred) == "discarded" and reviews.final_label(pred) is None
    assert pred.reviews[0].label is None  # a discard names no class
    assert reviews.describe(pred) == "Discarded by a radiologist: not a chest X-ray or unusable"
    reviews.add(s, pred, r2, "validated", None, "")
    assert reviews.state(pred) == "disagreement"
    # One correction is a correction, not an agreement with the model.
    reviews.add(s, other, r1, "corrected", "COVID", "")
    assert reviews.describe(other) == "Corrected by a radiologist to COVID (Radio said Normal)"
    reviews.add(s, third, r1, "validated", None, "")
    assert reviews.describe(third) == "Validated by a radiologist: Normal"


def test_each_state_is_found_by_sql_as_state_computes_it(s):
    r1 = users.create_user(s, "r1", "radiologist")
    r2 = users.create_user(s, "r2", "radiologist")
    preds = {name: _pred(s, name * 32) for name in "abcdefg"}
    s.flush()
    reviews.add(s, preds["b"], r1, "validated", None, "")  # agreed
    reviews.add(s, preds["c"], r1, "corrected", "COVID", "")  # disagreement
    reviews.add(s, preds["c"], r2, "validated", None, "")
    reviews.add(s, preds["d"], r1, "unknown", None, "")  # unknown
    reviews.add(s, preds["e"], r1, "discarded", None, "")  # discarded
    reviews.add(s, preds["f"], r1, "unknown", None, "")  # unknown, then r1 changed mind
    reviews.add(s, preds["f"], r1, "corrected", "COVID", "")
    preds["f"].reviews[-1].created_at = preds["f"].reviews[0].created_at + timedelta(seconds=1)
    reviews.add(s, preds["g"], r1, "discarded", None, "")  # discard against don't know
    reviews.add(s, preds["g"], r2, "unknown", None, "")
    s.flush()
    expected = {"a": "unreviewed", "b": "agreed", "c": "disagreement", "d": "unknown",
                "e": "discarded", "f": "agreed", "g": "disagreement"}
    assert {n: reviews.state(p) for n, p in preds.items()} == expected
    for wanted in reviews.STATES:
        found = set(s.scalars(select(Prediction.id).where(reviews.where_state(wanted))))
        assert found == {n * 32 for n, st in expected.items() if st == wanted}, wanted
