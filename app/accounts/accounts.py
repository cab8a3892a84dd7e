"""Account pages: one's own API tokens (every role), user administration (admins).

A new password or token is shown once on the page that created it and never again: only
its hash is stored.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app.accounts import audit, security, users
from app.accounts.auth import client_ip, current_user, requires
from app.store.db import web as dbweb
from app.store.db.models import ROLES, ApiToken, User, utcnow

bp = Blueprint("accounts", __name__)


def _tokens_page(shown: str = "", status: int = 200) -> ResponseReturnValue:
    user = current_user()
    assert user is not None
    tokens = dbweb.session().scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at)
    ).all()
    return render_template("tokens.html", tokens=tokens, shown=shown), status


@bp.get("/account/tokens")
@requires("clinician")
def tokens() -> ResponseReturnValue:
    """One's API tokens (names and dates only)."""
    return _tokens_page()


@bp.post("/account/tokens")
@requires("clinician")
def new_token() -> ResponseReturnValue:
    """Create a token for oneself; shown once."""
    user = current_user()
    assert user is not None
    session = dbweb.session()
    token = users.issue_token(session, user, request.form.get("name", "").strip() or "web")
    session.commit()
    return _tokens_page(shown=token, status=201)


@bp.post("/account/tokens/<int:token_id>/revoke")
@requires("clinician")
def revoke_token(token_id: int) -> ResponseReturnValue:
    """Revoke one of one's own tokens."""
    user = current_user()
    assert user is not None
    session = dbweb.session()
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        abort(404)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.log(session, "token_revoked", user_id=user.id, target=str(token.id),
                  ip=client_ip())
        session.commit()
    return _tokens_page()


def _users_page(message: str = "", shown: str = "", status: int = 200) -> ResponseReturnValue:
    everyone = dbweb.session().scalars(select(User).order_by(User.username)).all()
    return render_template("users.html", users=everyone, roles=ROLES, message=message,
                           shown=shown, failed=status >= 400), status


@bp.get("/admin/users")
@requires("admin")
def users_page() -> ResponseReturnValue:
    """Every account with its role and state."""
    return _users_page()


@bp.post("/admin/users")
@requires("admin")
def create() -> ResponseReturnValue:
    """Create an account with a one-time password (shown once)."""
    me = current_user()
    assert me is not None
    session = dbweb.session()
    password = security.new_password()
    try:
        user = users.create_user(session, request.form.get("username", ""),
                                 request.form.get("role", ""), password, by=me.id)
    except users.UserError as exc:
        session.rollback()
        return _users_page(message=str(exc), status=400)
    session.commit()
    return _users_page(message=f"Created {user.username}; give them this one-time password.",
                       shown=password, status=201)


@bp.post("/admin/users/<int:user_id>")
@requires("admin")
def change(user_id: int) -> ResponseReturnValue:
    """Change a role, disable / enable, or reset the password of an account."""
    me = current_user()
    assert me is not None
    session = dbweb.session()
    user = session.get(User, user_id)
    if user is None:
        abort(404)
    action = request.form.get("action", "")
    shown = ""
    if user.id == me.id and action in ("disable", "role"):
        return _users_page(message="You cannot disable or demote yourself.", status=400)
    if action == "role" and request.form.get("role") in ROLES:
        user.role = request.form["role"]
        user.session_nonce = security.new_nonce()
    elif action in ("disable", "enable"):
        user.active = action == "enable"
        user.session_nonce = security.new_nonce()
    elif action == "password":
        shown = security.new_password()
        users.set_password(session, user, shown, one_time=True, by=me.id)
    else:
        return _users_page(message="Unknown change.", status=400)
    audit.log(session, f"user_{action}", user_id=me.id, target=user.username, ip=client_ip(),
              detail={"role": user.role})
    session.commit()
    return _users_page(message=f"Updated {user.username}.", shown=shown)
