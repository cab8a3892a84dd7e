"""app/store/retention.py: retention of stored images against the database (reviewed and flagged
images stay, rows always stay), orphans and temporary files, on real files with real ages
and a real database (SQLite, or PostgreSQL with RADIO_TEST_DB=postgresql)."""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.platform.config import load_config
from app.store import db, images, retention
from app.store.db.models import Prediction, Review, User

DAY = 86400.0


@pytest.fixture
def cfg(tmp_path, db_url):
    db.migrate(db_url)
    return load_config(environ={"RADIO_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": db_url,
                                "RADIO_ORPHAN_GRACE_S": "600"})


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _path(cfg, sha: str, fmt: str = "PNG") -> Path:
    return Path(images.location(cfg)) / sha[:2] / f"{sha}.{images.EXTENSIONS[fmt]}"


def _image(cfg, name: str, stored_s: float, size: int = 10, made_s: float | None = None,
           row: bool = True, needs_review: bool = False, reviewed: bool = False) -> Path:
    """An image stored ``stored_s`` ago, with (``row``) a prediction made ``made_s`` ago."""
    sha = images.store(images.location(cfg), name.encode().ljust(size, b"."), "PNG")
    path = _path(cfg, sha)
    _age(path, stored_s)
    if row:
        made = datetime.now(UTC) - timedelta(seconds=stored_s if made_s is None else made_s)
        with db.session_scope(cfg.db_url) as s:
            pred = Prediction(id=uuid.uuid4().hex, image_sha256=sha, image_format="PNG",
                              image_bytes=size, status="ok", needs_review=needs_review,
                              created_at=made)
            s.add(pred)
            if reviewed:
                user = User(username=f"r-{name}", role="radiologist", session_nonce="n")
                s.add(user)
                s.flush()
                s.add(Review(prediction_id=pred.id, reviewer_id=user.id, verdict="validated"))
    return path


def _rows(cfg) -> int:
    with db.session_scope(cfg.db_url) as s:
        return s.query(Prediction).count()


def test_old_unreviewed_images_go_rows_stay(cfg):
    old = _image(cfg, "old", 40 * DAY)
    new = _image(cfg, "new", 1 * DAY)
    report = retention.clean(cfg)
    assert report.expired == 1 and not old.exists() and new.exists()
    assert _rows(cfg) == 2  # the audit trail is kept


def test_reviewed_and_flagged_images_stay_past_the_age(cfg):
    reviewed = _image(cfg, "reviewed", 400 * DAY, reviewed=True)
    flagged = _image(cfg, "flagged", 400 * DAY, needs_review=True)
    plain = _image(cfg, "plain", 400 * DAY)
    assert retention.clean(cfg).expired == 1
    assert reviewed.exists() and flagged.exists() and not plain.exists()


def test_an_image_used_again_lately_stays(cfg):
    # Stored long ago, but the same image came again yesterday (a newer row refers to it).
    path = _image(cfg, "again", 40 * DAY)
    sha = path.name.split(".")[0]
    with db.session_scope(cfg.db_url) as s:
        s.add(Prediction(id=uuid.uuid4().hex, image_sha256=sha, image_format="PNG",
                         image_bytes=10, status="ok",
                         created_at=datetime.now(UTC) - timedelta(days=1)))
    assert retention.clean(cfg).expired == 0 and path.exists()


def test_size_cap_removes_the_oldest_unreviewed_images_first(cfg):
    cfg = replace(cfg, uploads_max_mb=2500 / 2**20)
    kept = _image(cfg, "kept", 20 * 3600, size=1000, reviewed=True)
    ups = [_image(cfg, f"u{i}", (10 - i) * 3600, size=1000) for i in range(4)]
    report = retention.clean(cfg)
    assert report.over_size == 3 and kept.exists()
    assert [u.exists() for u in ups] == [False, False, False, True]


def test_orphans_and_temp_files_go_only_after_the_grace_period(cfg):
    orphan = _image(cfg, "orphan", 3600, row=False)  # stored, then the process died
    in_flight = _image(cfg, "inflight", 5, row=False)  # its row is coming
    tmp_old = orphan.parent / f".{orphan.name}.abc.tmp"
    tmp_old.write_bytes(b"half")
    _age(tmp_old, 3600)
    tmp_new = in_flight.parent / f".{in_flight.name}.def.tmp"
    tmp_new.write_bytes(b"half")
    report = retention.clean(cfg)
    assert (report.orphans, report.temp_files) == (1, 1)
    assert not orphan.exists() and not tmp_old.exists()
    assert in_flight.exists() and tmp_new.exists()


def test_storing_an_image_again_saves_it_from_a_pass(cfg):
    path = _image(cfg, "again", 40 * DAY)
    data = path.read_bytes()
    where = images.location(cfg)
    sha = path.name.split(".")[0]
    # The pass decided on the old time; a request stores the same image before the delete.
    images.store(where, data, "PNG")
    assert not images.remove(where, sha, "PNG", stored_before=time.time() - 600)
    assert path.read_bytes() == data
    # Without that, the same call deletes it; a request after the delete writes it anew.
    _age(path, 40 * DAY)
    assert images.remove(where, sha, "PNG", stored_before=time.time() - 600)
    assert not path.exists()
    images.store(where, data, "PNG")
    assert path.read_bytes() == data


def test_a_file_a_killed_pass_set_aside_is_put_back(cfg):
    path = _image(cfg, "aside", 40 * DAY, reviewed=True)
    aside = path.with_name(f".{path.name}.123.456.del")
    os.rename(path, aside)
    report = retention.clean(cfg)
    assert report.put_back == 1 and path.exists() and not aside.exists()


def test_clean_once_takes_the_lock_and_survives_a_database_without_tables(cfg, tmp_path):
    _image(cfg, "orphan", 3600, row=False)
    report = retention.clean_once(cfg)
    assert report is not None and report.orphans == 1
    # While another process holds the lock, a pass is skipped rather than doubled.
    with open(cfg.data_dir / ".retention.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert retention.clean_once(cfg) is None
    # A database never migrated: the pass fails (logged), nothing is deleted.
    bare = replace(cfg, database_url=db.default_url(tmp_path / "bare"))
    kept = _image(bare, "kept-without-db", 3600, row=False)
    assert retention.clean_once(bare) is None and kept.exists()


def test_empty_store_needs_no_database(tmp_path):
    cfg = load_config(environ={"RADIO_DATA_DIR": str(tmp_path / "none"),
                               "DATABASE_URL": "sqlite:////nonexistent/dir/radio.db"})
    assert retention.clean(cfg) == retention.Report()
