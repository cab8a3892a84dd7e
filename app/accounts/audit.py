"""The append-only audit log: one call per thing a person did (logins, reviews, tokens...).

Entries carry ids and actions, never image content or patient details. The table refuses
UPDATE and DELETE in the database itself (migration 0001).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.store.db.models import AuditEntry


def log(
    session: Session,
    action: str,
    *,
    user_id: int | None = None,
    target: str = "",
    ip: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one entry to ``session`` (committed with the change it records)."""
    session.add(AuditEntry(action=action, user_id=user_id, target=target[:128], ip=ip[:64],
                           detail=detail))


def count_since(session: Session, action: str, since: Any, **match: str) -> int:
    """How many ``action`` entries since ``since`` whose columns equal ``match`` (any of)."""
    from sqlalchemy import or_

    conditions = [getattr(AuditEntry, col) == value for col, value in match.items()]
    query = select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == action, AuditEntry.at >= since
    )
    if conditions:
        query = query.where(or_(*conditions))
    return int(session.scalar(query) or 0)


def times_since(session: Session, action: str, since: Any, **match: str) -> list[Any]:
    """When each ``action`` entry since ``since`` whose columns all equal ``match`` was
    made, oldest first."""
    query = select(AuditEntry.at).where(AuditEntry.action == action, AuditEntry.at >= since)
    for col, value in match.items():
        query = query.where(getattr(AuditEntry, col) == value)
    return list(session.scalars(query.order_by(AuditEntry.at)))
