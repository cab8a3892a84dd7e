"""The audit-log page (admins): who did what and when, newest first, filtered by user,
action and date range, one page of :data:`PAGE_SIZE` at a time, all in SQL.

The entries are written by :func:`app.accounts.audit.log` (logins, reviews, tokens, users, model
and dataset actions); they hold ids and actions, never image content or patient details,
so the page shows them whole (the detail as compact JSON).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from app.accounts.auth import requires
from app.store.db import web as dbweb
from app.store.db.models import AuditEntry, User

bp = Blueprint("audit_page", __name__)
PAGE_SIZE = 50


def _day(value: str, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` as the start of that UTC day (of the next day for an end)."""
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return day + timedelta(days=1) if end else day


def detail_text(detail: dict[str, Any] | None) -> str:
    """The entry's detail in one line, ``key: value; ...`` (texts as they are, anything
    else as JSON); nothing for none."""
    if not detail:
        return ""
    parts = [f"{k}: {v if isinstance(v, str) else json.dumps(v)}"
             for k, v in sorted(detail.items())]
    return "; ".join(parts)[:500]


@bp.get("/admin/audit")
@requires("admin")
def page() -> ResponseReturnValue:
    """The audit log, newest first; ``user``, ``action``, ``from``, ``to``, ``page``."""
    session = dbweb.session()
    args = {k: request.args.get(k, "").strip() for k in ("user", "action", "from", "to")}
    where = []
    errors = []
    if args["user"]:
        user_id = session.scalar(select(User.id).where(User.username == args["user"]))
        if user_id is None:
            errors.append(f"No user named {args['user']!r}.")
        where.append(AuditEntry.user_id == (user_id if user_id is not None else -1))
    if args["action"]:
        where.append(AuditEntry.action == args["action"])
    start, end = _day(args["from"]), _day(args["to"], end=True)
    for key, parsed in (("from", start), ("to", end)):
        if args[key] and parsed is None:
            errors.append(f"'{key.capitalize()}' is not a date (YYYY-MM-DD): ignored.")
    if start and end and start >= end:
        errors.append("'From' is after 'To': showing everything from 'From' on.")
        end = None
    if start:
        where.append(AuditEntry.at >= start)
    if end:
        where.append(AuditEntry.at < end)
    total = session.scalar(select(func.count(AuditEntry.id)).where(*where)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    number = request.args.get("page", "1")
    current = min(max(1, int(number) if number.isdigit() else 1), pages)
    rows = session.execute(
        select(AuditEntry, User.username).outerjoin(User, User.id == AuditEntry.user_id)
        .where(*where).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(PAGE_SIZE).offset((current - 1) * PAGE_SIZE)).all()
    actions = session.scalars(select(AuditEntry.action).distinct()
                              .order_by(AuditEntry.action)).all()
    usernames = session.scalars(select(User.username).order_by(User.username)).all()
    kept = {k: v for k, v in args.items() if v}
    return render_template("audit.html", rows=rows, total=total, page=current, pages=pages,
                           args=args, kept=kept, actions=actions, usernames=usernames,
                           errors=errors, detail_text=detail_text)
