"""Database access of the web app: one engine per process, sessions, and migrations.

``DATABASE_URL`` picks the database: SQLite by default (``<data dir>/radio.db``, in WAL
mode so readers never block the writer), PostgreSQL with
``postgresql+psycopg://user:password@host/db``. The schema is owned by the Alembic
migrations beside this file; :func:`migrate` brings any database to the newest revision
and is safe to call from several processes at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.store.db import review_state

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number: the PostgreSQL advisory lock serialising concurrent migrations.
_PG_LOCK_ID = 0x5241444944420001

_engines: dict[str, Engine] = {}
# Every session of the process keeps the derived review state (history, queue) up to date.
review_state.install()

# Set by gunicorn's master (app/platform/gunicorn.conf.py) once a child process has migrated the
# database: its workers inherit it and skip Alembic, which would stay in each worker's
# memory for good (11 MB per worker measured). Holds a digest, never the URL and its password.
MIGRATED_ENV = "RADIO_DB_MIGRATED"


def migrated_mark(url: str) -> str:
    """The value of ``MIGRATED_ENV`` that says ``url`` is at the newest revision."""
    return hashlib.sha256(url.encode()).hexdigest()


def default_url(data_dir: Path) -> str:
    """The SQLite database under the data directory (radio_config decides, for every process)."""
    from radio_config import database_url

    return database_url(data_dir)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers and one writer at once; FULL sync: an acknowledged commit survives a
    # power cut; busy_timeout: workers wait for the write lock instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _private(path: Path) -> None:
    """The SQLite file readable by its owner only (it holds user names, password hashes and
    who saw which patient's image): made so, or made so again. SQLite gives its -wal and
    -shm files the database's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for extra in ("-wal", "-shm"):
        side = path.with_name(path.name + extra)
        if side.exists():
            side.chmod(0o600)


def get_engine(url: str) -> Engine:
    """The process-wide engine for ``url`` (created on first use)."""
    engine = _engines.get(url)
    if engine is None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                _private(Path(parsed.database))
            engine = create_engine(url, connect_args={"timeout": 10})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        _engines[url] = engine
    return engine


def dispose_all() -> None:
    """Close every pooled connection (tests; after fork)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = sessionmaker(get_engine(url), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Any:
    """An Alembic Config pointing at Radio's migrations and ``url``."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # '%' is Alembic's interpolation character; a password may contain one.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head", data_dir: Path | None = None) -> None:
    """Upgrade the database at ``url`` to ``revision``, one process at a time.

    ``data_dir`` is where the JSON records of earlier versions are imported from.
    """
    from alembic import command

    engine = get_engine(url)
    cfg = alembic_config(url)
    if data_dir is not None:
        cfg.attributes["data_dir"] = Path(data_dir)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_ID})
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_ID})
                conn.commit()
        return
    database = make_url(url).database
    lock_path = Path(f"{database}.migrate.lock") if database else None
    if lock_path is None:  # in-memory SQLite: one process by definition
        command.upgrade(cfg, revision)
        return
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(cfg, revision)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def current_revision(url: str) -> str | None:
    """The revision the database is at, None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
