"""Who is asking: session cookies, API tokens, roles, CSRF, and the login pages.

* Browsers log in with a password and get a signed session cookie (HttpOnly,
  SameSite=Lax, Secure when the request came over HTTPS or RADIO_COOKIE_SECURE is set).
  The cookie carries the user's ``session_nonce``, checked on every request against the
  database: logging out, changing a password or disabling the account renews it, so every
  copy of the user's cookies stops working at once (server-side revocation; logging out
  ends the user's other browser sessions too).
* Scripts send ``Authorization: Bearer <token>``; a request with a bearer token is judged
  by the token alone (never by a cookie next to it).
* Every state-changing request the cookie authenticates must carry the session's CSRF
  token (form field ``csrf_token`` or header ``X-CSRF-Token``), whatever other header it
  has (an empty ``Authorization:`` is not a token). Requests without a logged-in session
  carry no ambient authority, so only the login form needs it among them.
* Failed logins are counted in the audit log, by the real client address (X-Forwarded-For
  is believed only from FORWARDED_ALLOW_IPS, the proxy): within 15 minutes, 5 for one user
  name from one address, 20 from one address, or 50 for one user name from anywhere lock
  further tries of that kind out (429 with Retry-After) until the window passes, in every
  worker alike. Nobody else is locked out: not the other users behind the same proxy, nor
  the user from another address until the account's own limit.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import os
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response as WerkzeugResponse

from app.accounts import audit, security, users
from app.platform.config import Config
from app.platform.errors import APIError
from app.store.db import web as dbweb
from app.store.db.models import User, utcnow

bp = Blueprint("auth", __name__)
F = TypeVar("F", bound=Callable[..., Any])

LOCKOUT_WINDOW = timedelta(minutes=15)
MAX_FAILS_PER_USER = 5  # one user name from one address
MAX_FAILS_PER_IP = 20  # any user names from one address
MAX_FAILS_PER_ACCOUNT = 50  # one user name from all addresses: distributed guessing
_UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, made Secure whenever the request itself was HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def _secret_key(cfg: Config) -> str:
    """RADIO_SECRET_KEY, else a random key created once under the data dir (mode 0600)."""
    if cfg.secret_key:
        return cfg.secret_key
    path = Path(cfg.data_dir) / "secret_key"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(security.new_nonce() + security.new_nonce())
    except FileExistsError:
        pass  # another worker made it first
    except OSError:
        # No writable data dir: sessions of this process only; /health reports the dir.
        return security.new_nonce() + security.new_nonce()
    return path.read_text().strip()


def client_ip() -> str:
    """The real client's address: the peer, or, when the peer is the configured proxy,
    the address the proxy appended last to X-Forwarded-For (earlier entries come from the
    client and prove nothing)."""
    peer = request.remote_addr or ""
    cfg: Config = current_app.config["RADIO"]
    proxies = {p.strip() for p in cfg.forwarded_allow_ips.split(",") if p.strip()}
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and (peer in proxies or "*" in proxies):
        last = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            return peer
    return peer


def _bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# --- who is asking --------------------------------------------------------------------


def current_user() -> User | None:
    """The authenticated user of this request (token or session), or None."""
    if "user" in g:
        return g.user
    user: User | None = None
    g.via_token = False
    token = _bearer_token()
    if token is not None:
        g.via_token = True
        user = users.token_user(dbweb.session(), token)
    elif request.headers.get("Authorization", "").strip():
        pass  # another scheme (Basic...): not Radio's; never the cookie next to it either
    elif session.get("uid") is not None:
        candidate = dbweb.session().get(User, session["uid"])
        if (candidate is not None and candidate.active
                and hmac.compare_digest(candidate.session_nonce, session.get("nonce", ""))):
            user = candidate
    g.user = user
    return user


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.endpoint in JSON_ENDPOINTS


# Endpoints answering JSON: a refusal there is JSON too, never a login page.
JSON_ENDPOINTS = {"predict.predict", "teaching.analyse"}


def _deny(status: int, message: str) -> WerkzeugResponse:
    if _wants_json():
        raise APIError(status, message)
    if status == 401:
        return _login_page(status=401, next_url=request.full_path.rstrip("?"))
    return current_app.make_response((render_template("denied.html", message=message), status))


def requires(role: str) -> Callable[[F], F]:
    """Decorator: the view needs a user of ``role`` or above (401 anonymous, 403 below)."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return _deny(401, "Log in, or send an API token, to use Radio.")
            if user.must_change_password and not g.via_token:
                if _wants_json():
                    raise APIError(403, "Choose a new password (log in on the web page) first.")
                return redirect(url_for("auth.password"))
            if not user.can(role):
                return _deny(403, f"This needs the {role} role; you are a {user.role}.")
            return view(*args, **kwargs)

        inner.required_role = role  # type: ignore[attr-defined]
        return inner  # type: ignore[return-value]

    return wrap


# --- CSRF -----------------------------------------------------------------------------


def csrf_token() -> str:
    """This session's CSRF token (created on first use); templates put it in every form."""
    if "csrf" not in session:
        session["csrf"] = security.new_nonce()
    return session["csrf"]


def _check_csrf() -> None:
    if request.method not in _UNSAFE or _bearer_token() is not None:
        return  # judged by its token alone (current_user): no cookie, no CSRF to check
    if session.get("uid") is None and request.endpoint != "auth.login":
        return  # no ambient authority to abuse; the view answers 401 itself
    # The header first: reading the form of a big upload here would be wasted work.
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent, expected):
        if _wants_json():
            raise APIError(403, "The request lacks this page's security token; reload the page.")
        raise _CSRFError()


class _CSRFError(Exception):
    pass


def _csrf_failed(_exc: _CSRFError) -> tuple[str, int]:
    msg = "The form had expired or did not come from Radio; reload the page and try again."
    return render_template("denied.html", message=msg), 403


# --- pages ----------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("web.index")


def _login_page(status: int = 200, error: str = "", next_url: str = "") -> WerkzeugResponse:
    html = render_template("login.html", error=error, next_url=next_url)
    return current_app.make_response((html, status))


def _locked_out(username: str, ip: str) -> int:
    """Seconds until a login of ``username`` from ``ip`` may be tried again; 0 when now."""
    s = dbweb.session()
    now = utcnow()
    since = now - LOCKOUT_WINDOW
    wait = 0.0
    for limit, match in ((MAX_FAILS_PER_USER, {"target": username, "ip": ip}),
                         (MAX_FAILS_PER_IP, {"ip": ip}),
                         (MAX_FAILS_PER_ACCOUNT, {"target": username})):
        times = audit.times_since(s, "login_failed", since, **match)
        if len(times) >= limit:
            # Free again when enough of the failures have left the window.
            freed = _aware(times[len(times) - limit]) + LOCKOUT_WINDOW
            wait = max(wait, (freed - now).total_seconds())
    return max(int(wait) + 1, 1) if wait > 0 else 0


def _aware(when: Any) -> Any:
    """SQLite gives back naive UTC datetimes; PostgreSQL aware ones."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@bp.route("/login", methods=["GET", "POST"])
def login() -> WerkzeugResponse:
    """The login form; on success the session cookie, then the page asked for."""
    next_url = request.values.get("next", "")
    if request.method == "GET":
        return _login_page(next_url=next_url)
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    ip = client_ip()
    s = dbweb.session()
    wait_s = _locked_out(username, ip)
    if wait_s:
        resp = _login_page(429, "Too many failed logins; wait "
                           f"{-(-wait_s // 60)} minutes and try again.", next_url)
        resp.headers["Retry-After"] = str(wait_s)
        return resp
    user = users.find(s, username)
    ok = security.verify_password(password, user.password_hash if user else None)
    if not ok or user is None or not user.active:
        audit.log(s, "login_failed", target=username, ip=ip)
        s.commit()
        return _login_page(401, "Wrong user name or password.", next_url)
    audit.log(s, "login", user_id=user.id, target=user.username, ip=ip)
    s.commit()
    session.clear()  # a fresh session: no fixation of a cookie set before login
    session.permanent = True
    session["uid"] = user.id
    session["nonce"] = user.session_nonce
    csrf_token()
    if user.must_change_password:
        return redirect(url_for("auth.password"))
    return redirect(_safe_next(next_url))


@bp.post("/logout")
def logout() -> WerkzeugResponse:
    """End the browser session, on the server too: the user's nonce is renewed, so a copy
    of the cookie (or any other of the user's sessions) no longer authenticates."""
    user = current_user()
    if user is not None and not g.via_token:
        s = dbweb.session()
        user.session_nonce = security.new_nonce()
        audit.log(s, "logout", user_id=user.id, target=user.username, ip=client_ip())
        s.commit()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def password() -> WerkzeugResponse:
    """Change one's own password (required after a one-time password)."""
    user = current_user()
    if user is None or g.via_token:
        return _deny(401, "Log in to change your password.")
    error = ""
    if request.method == "POST":
        s = dbweb.session()
        new = request.form.get("new_password", "")
        if not security.verify_password(request.form.get("password", ""), user.password_hash):
            error = "The current password is wrong."
        elif new != request.form.get("confirm", ""):
            error = "The two new passwords differ."
        else:
            try:
                users.set_password(s, user, new, one_time=False)
            except users.UserError as exc:
                error = str(exc)
        if not error:
            s.commit()
            session["nonce"] = user.session_nonce  # this browser stays logged in
            return redirect(url_for("web.index"))
    html = render_template("password.html", error=error, forced=user.must_change_password)
    return current_app.make_response((html, 400 if error else 200))


def init_app(app: Flask) -> None:
    """Sessions, CSRF and the template helpers on ``app``."""
    cfg: Config = app.config["RADIO"]
    app.secret_key = _secret_key(cfg)
    app.session_interface = _SessionInterface()
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.cookie_secure,
        SESSION_COOKIE_NAME="radio_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    app.before_request(_check_csrf)
    app.register_error_handler(_CSRFError, _csrf_failed)
    app.jinja_env.globals.update(csrf_token=csrf_token, current_user=current_user)
