"""User accounts and API tokens: the functions the pages use, and the command line.

    python -m app.accounts.users token --user NAME --role ROLE   # makes NAME if needed; token last
    python -m app.accounts.users create --user NAME --role ROLE  # prints a one-time password
    python -m app.accounts.users password --user NAME            # new one-time password
    python -m app.accounts.users bootstrap                       # migrate; first admin if none
    python -m app.accounts.users list

The database is the app's (DATABASE_URL, else the SQLite file under RADIO_DATA_DIR). There
is no default password anywhere: every password is random and shown once, and its owner
must change it at the first login.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts import audit, security
from app.store import db
from app.store.db.models import ROLES, ApiToken, User


class UserError(ValueError):
    """A request about accounts that cannot be done; the message is for the operator."""


def find(session: Session, username: str) -> User | None:
    """The user called ``username``, or None."""
    return session.scalar(select(User).where(User.username == username))


def create_user(
    session: Session, username: str, role: str, password: str | None = None,
    by: int | None = None,
) -> User:
    """A new active user; with a password, the user must change it at the first login."""
    username = username.strip()
    if not username or len(username) > 64 or not username.isprintable():
        raise UserError("A user name is 1 to 64 printable characters.")
    if role not in ROLES:
        raise UserError(f"The role must be one of {', '.join(ROLES)}.")
    if find(session, username) is not None:
        raise UserError(f"The user {username!r} already exists.")
    user = User(username=username, role=role, session_nonce=security.new_nonce(),
                active=True, must_change_password=password is not None,
                password_hash=security.hash_password(password) if password else None)
    session.add(user)
    session.flush()
    audit.log(session, "user_created", user_id=by, target=username, detail={"role": role})
    return user


def set_password(
    session: Session, user: User, password: str, *, one_time: bool, by: int | None = None
) -> None:
    """Replace the password; every browser session of the user is logged out."""
    if not one_time:
        problem = security.password_problem(password)
        if problem:
            raise UserError(problem)
    user.password_hash = security.hash_password(password)
    user.must_change_password = one_time
    user.session_nonce = security.new_nonce()
    audit.log(session, "password_set", user_id=by or user.id, target=user.username,
              detail={"one_time": one_time})


def issue_token(session: Session, user: User, name: str = "", by: int | None = None) -> str:
    """A new API token for ``user``: returned once, only its hash is stored."""
    token = security.new_token()
    session.add(ApiToken(user_id=user.id, token_hash=security.token_hash(token), name=name[:64]))
    audit.log(session, "token_issued", user_id=by or user.id, target=user.username,
              detail={"name": name[:64]})
    return token


def token_user(session: Session, token: str) -> User | None:
    """The active user owning the unrevoked ``token``, or None."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == security.token_hash(token)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    return row.user


def bootstrap_admin(session: Session) -> tuple[str, str] | None:
    """On an empty user table, an ``admin`` with a one-time password; None otherwise."""
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    password = security.new_password()
    create_user(session, "admin", "admin", password)
    return "admin", password


# --- command line ---------------------------------------------------------------------


def _db_url(given: str | None) -> str:
    from app.platform.config import load_config

    return given or load_config().db_url


def _cmd_token(session: Session, args: argparse.Namespace) -> None:
    user = find(session, args.user)
    if user is None:
        if args.role is None:
            raise UserError(f"There is no user {args.user!r}; give --role to create it.")
        user = create_user(session, args.user, args.role)
        print(f"created user {user.username!r} ({user.role})", file=sys.stderr)
    elif args.role and user.role != args.role:
        raise UserError(f"{user.username!r} is a {user.role}, not a {args.role}.")
    print(issue_token(session, user, args.name))


def _cmd_create(session: Session, args: argparse.Namespace) -> None:
    password = security.new_password()
    user = create_user(session, args.user, args.role, password)
    print(f"created {user.role} {user.username!r}; one-time password (change it at first "
          f"login):")
    print(password)


def _cmd_password(session: Session, args: argparse.Namespace) -> None:
    user = find(session, args.user)
    if user is None:
        raise UserError(f"There is no user {args.user!r}.")
    password = security.new_password()
    set_password(session, user, password, one_time=True)
    print(f"new one-time password of {user.username!r} (change it at next login):")
    print(password)


def _cmd_bootstrap(session: Session, args: argparse.Namespace) -> None:
    created = bootstrap_admin(session)
    if created is None:
        print("Radio accounts exist; log in with yours (an admin can reset a password with "
              "`python -m app.accounts.users password --user NAME`).")
        return
    name, password = created
    print("First start: Radio created the administrator account.")
    print(f"  user: {name}    one-time password: {password}")
    print("  You will be asked to choose a new password at the first login. This password "
          "is shown only once.")


def _cmd_list(session: Session, _args: argparse.Namespace) -> None:
    for user in session.scalars(select(User).order_by(User.username)):
        state = "active" if user.active else "disabled"
        print(f"{user.username}\t{user.role}\t{state}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m app.accounts.users``."""
    parser = argparse.ArgumentParser(prog="python -m app.accounts.users", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: DATABASE_URL, else the SQLite file")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("token", help="new API token (creates the user if needed)")
    p.add_argument("--user", required=True)
    p.add_argument("--role", choices=ROLES, default=None)
    p.add_argument("--name", default="cli", help="label of the token")
    p = sub.add_parser("create", help="new user with a one-time password")
    p.add_argument("--user", required=True)
    p.add_argument("--role", choices=ROLES, required=True)
    p = sub.add_parser("password", help="new one-time password for a user")
    p.add_argument("--user", required=True)
    sub.add_parser("bootstrap", help="migrate the database; create the first admin if none")
    sub.add_parser("migrate", help="bring the database to the newest revision (every command does)")
    sub.add_parser("list", help="list users")
    args = parser.parse_args(argv)
    url = _db_url(args.database_url)
    from app.platform.config import load_config

    db.migrate(url, data_dir=load_config().data_dir)
    handler = {"token": _cmd_token, "create": _cmd_create, "password": _cmd_password,
               "bootstrap": _cmd_bootstrap, "list": _cmd_list,
               "migrate": lambda _session, _args: None}[args.command]
    try:
        with db.session_scope(url) as session:
            handler(session, args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
