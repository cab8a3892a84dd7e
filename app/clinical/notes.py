"""A clinician's short note on their own case: their study reference, to find it again.

The note is written by the clinician who asked for the analysis, and shown only to that
author and to radiologists (who review the case). Admins see every case but not its note:
a study reference can point at a patient, and administering Radio needs none. So the rule
is the role itself, not ``User.can`` (an admin ranks above a radiologist).

The notes are searched in the database (a case-insensitive substring), limited to the notes
the searcher may see. Nothing here knows about Flask.
"""

from __future__ import annotations

import unicodedata

from sqlalchemy import ColumnElement, false, func, select
from sqlalchemy.orm import Session

from app.accounts import audit
from app.platform.failures import NotAllowed
from app.store.db.models import CaseNote, Prediction, User, utcnow

# Enough for a study reference and a few words; a short field discourages clinical history.
MAX_CHARS = 120


class NoteError(ValueError):
    """A note that cannot be saved; the message is for the clinician."""


def may_read(user: User, author_id: int) -> bool:
    """True when ``user`` may see a note written by ``author_id``."""
    return user.active and (user.id == author_id or user.role == "radiologist")


def _visible(user: User) -> ColumnElement[bool]:
    """The notes ``user`` may see, as a SQL condition on ``case_notes``."""
    if not user.active:
        return false()
    if user.role == "radiologist":
        return CaseNote.author_id.is_not(None)
    return CaseNote.author_id == user.id


def clean(text: str) -> str:
    """The note as stored: one line, spaces collapsed; NoteError if too long or not text."""
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in text):
        raise NoteError("The note contains control characters; type plain text.")
    text = " ".join(text.split())
    if len(text) > MAX_CHARS:
        raise NoteError(f"The note is {len(text)} characters long; at most {MAX_CHARS}.")
    return text


def save(session: Session, pred: Prediction, user: User, text: str,
         ip: str = "") -> CaseNote | None:
    """Set (or, with an empty text, remove) the note of ``pred``; only the clinician who
    asked for the analysis may (NotAllowed: 403, not a form error). The audit log records that
    a note changed, never its text."""
    if pred.user_id != user.id:
        raise NotAllowed("Only the clinician who asked for this analysis can note it.")
    text = clean(text)
    note = session.get(CaseNote, pred.id)
    if not text:
        if note is not None:
            session.delete(note)
        audit.log(session, "note_removed", user_id=user.id, target=pred.id, ip=ip)
        return None
    if note is None:
        note = CaseNote(prediction_id=pred.id, author_id=user.id, text=text)
        session.add(note)
    else:
        note.text, note.updated_at = text, utcnow()
    audit.log(session, "note_saved", user_id=user.id, target=pred.id, ip=ip,
              detail={"chars": len(text)})
    return note


def of_case(session: Session, pred: Prediction, user: User) -> CaseNote | None:
    """The note of ``pred`` if there is one and ``user`` may see it."""
    note = session.get(CaseNote, pred.id)
    return note if note is not None and may_read(user, note.author_id) else None


def of_cases(session: Session, user: User, pred_ids: list[str]) -> dict[str, str]:
    """``{prediction id: note text}`` of the notes among ``pred_ids`` that ``user`` may see."""
    if not pred_ids:
        return {}
    rows = session.execute(select(CaseNote.prediction_id, CaseNote.text)
                           .where(CaseNote.prediction_id.in_(pred_ids), _visible(user)))
    return {pid: text for pid, text in rows}


def matching(user: User, query: str) -> ColumnElement[bool]:
    """A SQL condition on predictions: they have a note ``user`` may see that contains
    ``query`` (any case; ``%`` and ``_`` are literal characters)."""
    escaped = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return Prediction.id.in_(
        select(CaseNote.prediction_id).where(
            _visible(user), func.lower(CaseNote.text).like(f"%{escaped}%", escape="\\")))
