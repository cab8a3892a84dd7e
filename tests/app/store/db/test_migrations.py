"""Alembic migrations on SQLite and a real PostgreSQL: up from empty, from the previous
revision, down, the append-only audit log, and the import of the old JSON records."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError

from app.store import db
from app.store.db.models import AuditEntry, Base, Prediction, User

HEAD = "0010"  # the newest migration


def _tables(url: str) -> set[str]:
    return set(inspect(db.get_engine(url)).get_table_names())


def test_upgrade_from_empty_matches_the_models(db_url):
    db.migrate(db_url)
    assert db.current_revision(db_url) == HEAD
    insp = inspect(db.get_engine(db_url))
    for table in Base.metadata.sorted_tables:
        columns = {c["name"] for c in insp.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
    # Running it again (a second worker, a restart) changes nothing.
    db.migrate(db_url)
    assert db.current_revision(db_url) == HEAD


def test_downgrade_to_empty_then_up_again(db_url):
    db.migrate(db_url)
    from alembic import command

    command.downgrade(db.alembic_config(db_url), "base")
    assert db.current_revision(db_url) is None
    assert not _tables(db_url) & {t.name for t in Base.metadata.sorted_tables}
    db.migrate(db_url)
    assert {t.name for t in Base.metadata.sorted_tables} <= _tables(db_url)


def test_upgrade_from_previous_revision_imports_the_json_records(db_url, tmp_path):
    data_dir = tmp_path / "data"
    folder = data_dir / "predictions"
    folder.mkdir(parents=True)
    ok = {"id": "a" * 32, "created_utc": "2026-01-02T03:04:05.000+00:00",
          "upload": {"bytes": 1234, "format": "PNG", "sha256": "f" * 64},
          "result": {"id": "a" * 32, "status": "ok", "label": "Normal",
                     "probabilities": {"Normal": 0.9, "COVID": 0.1}, "confidence": 0.9,
                     "needs_review": False, "model": {"name": "radio-cxr", "version": "2"},
                     "latency_ms": 12.5}}
    failed = {"id": "b" * 32, "created_utc": "2026-01-02T03:05:00.000+00:00",
              "upload": {"bytes": 10, "format": "JPEG", "sha256": "e" * 64},
              "error": {"status": 503, "message": "model server down"}}
    for rec in (ok, failed):
        (folder / f"{rec['id']}.json").write_text(json.dumps(rec))
    (folder / "broken.json").write_text("{not json")

    db.migrate(db_url, "0001")
    assert db.current_revision(db_url) == "0001"
    db.migrate(db_url, data_dir=data_dir)
    with db.session_scope(db_url) as s:
        rows = {p.id: p for p in s.scalars(select(Prediction))}
    assert set(rows) == {ok["id"], failed["id"]}
    assert rows[ok["id"]].label == "Normal" and rows[ok["id"]].model_version == "2"
    assert rows[ok["id"]].probabilities == ok["result"]["probabilities"]
    assert rows[ok["id"]].created_at.year == 2026 and rows[ok["id"]].image_sha256 == "f" * 64
    assert rows[failed["id"]].status == "error"
    assert rows[failed["id"]].error == "model server down"


def test_audit_log_is_append_only_in_the_database(db_url):
    db.migrate(db_url)
    with db.session_scope(db_url) as s:
        s.add(AuditEntry(action="login", target="x"))
    for statement in ("UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            with db.get_engine(db_url).begin() as conn:
                conn.execute(text(statement))
    with db.session_scope(db_url) as s:
        assert [e.action for e in s.scalars(select(AuditEntry))] == ["login"]


def test_role_is_checked_by_the_database(db_url):
    db.migrate(db_url)
    with pytest.raises(DBAPIError):
        with db.session_scope(db_url) as s:
            s.add(User(username="x", role="superuser", session_nonce="n"))


def test_alembic_command_line_from_the_project_root(db_url, tmp_path):
    """`alembic upgrade head` / `downgrade -1` as an operator types them (alembic.ini)."""
    import subprocess
    import sys
    from pathlib import Path

    import helpers

    env = helpers.server_env(PYTHONPATH=str(helpers.ROOT), DATABASE_URL=db_url,
                             RADIO_DATA_DIR=str(tmp_path / "data"))
    alembic = [str(Path(sys.executable).parent / "alembic")]

    def run(*args: str) -> str:
        out = subprocess.run([*alembic, *args], env=env, cwd=helpers.ROOT,
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout + out.stderr

    run("upgrade", "head")
    assert db.current_revision(db_url) == HEAD
    run("downgrade", "-1")
    assert db.current_revision(db_url) == "0009"  # the one before HEAD
    run("upgrade", "head")
    assert f"{HEAD} (head)" in run("current")


def test_0005_keeps_old_rows_and_allows_the_discard_verdict(db_url):
    """Rows written before 0005 have no decision; a discard is accepted after it, refused by
    the database before it (and removed on the way down)."""
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    db.migrate(db_url, revision="0004")
    engine = db.get_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, username, role, active, "
                          "must_change_password, session_nonce, created_at) VALUES "
                          "(1, 'r', 'radiologist', true, false, 'n', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO predictions (id, created_at, site, image_sha256, "
                          "image_format, image_bytes, status, needs_review) VALUES "
                          "('p', CURRENT_TIMESTAMP, '', 'h', 'PNG', 1, 'ok', false)"))
    discard = text("INSERT INTO reviews (prediction_id, reviewer_id, verdict, comment, "
                   "created_at) VALUES ('p', 1, 'discarded', '', CURRENT_TIMESTAMP)")
    try:
        with engine.begin() as conn:
            conn.execute(discard)
        raise AssertionError("0004 accepted a discard")
    except IntegrityError:
        pass
    db.dispose_all()
    db.migrate(db_url)
    engine = db.get_engine(db_url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT decision FROM predictions")).scalar() is None
        conn.execute(discard)
    db.dispose_all()
    command.downgrade(db.alembic_config(db_url), "0004")
    with db.get_engine(db_url).begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM reviews")).scalar() == 0
