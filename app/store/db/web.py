"""The database inside a request: one session per request, migrated on first use.

The first request of a process that needs the database brings it to the newest Alembic
revision (under a lock, so gunicorn workers starting together do not race), unless
gunicorn's master already did it in a child process before forking the workers
(``db.MIGRATED_ENV``); the app factory itself never touches the database, so a
misconfigured one shows up in the log of the first request and in ``/health``, not as a
worker that cannot boot.
"""

from __future__ import annotations

import os
import threading

from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

from app.store import db

_migrated: set[str] = set()
_lock = threading.Lock()


def _ready(url: str) -> None:
    if url in _migrated:
        return
    with _lock:
        if url not in _migrated:
            if os.environ.get(db.MIGRATED_ENV) != db.migrated_mark(url):
                db.migrate(url, data_dir=current_app.config["RADIO"].data_dir)
            _migrated.add(url)


def session() -> Session:
    """This request's session (commit explicitly; closed at the end of the request)."""
    if "db_session" not in g:
        url = current_app.config["RADIO"].db_url
        _ready(url)
        g.db_session = sessionmaker(db.get_engine(url), expire_on_commit=False)()
    return g.db_session


def _close(_exc: BaseException | None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()  # rolls back whatever was not committed


def init_app(app: Flask) -> None:
    """Close the request's session when the request ends."""
    app.teardown_appcontext(_close)
