"""app/retention.py: upload retention and orphan cleanup, on real files with real ages."""

from __future__ import annotations

import os
import time
from pathlib import Path

from app import retention, storage
from app.config import load_config

DAY = 86400.0


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _upload(data_dir: Path, rid: str, age_s: float, size: int = 10, record: bool = True):
    up = storage.save_upload(data_dir, rid, b"x" * size, "PNG")
    _age(up, age_s)
    if record:
        _age(storage.save_record(data_dir, rid, {"id": rid}), age_s)
    return up


def test_old_uploads_go_records_stay(tmp_path):
    old = _upload(tmp_path, "old", 40 * DAY)
    new = _upload(tmp_path, "new", 1 * DAY)
    report = retention.clean(tmp_path, max_age_s=30 * DAY, max_bytes=1e9, orphan_grace_s=600)
    assert report.expired == 1 and not old.exists() and new.exists()
    assert (tmp_path / "predictions" / "old.json").exists()  # the audit trail is kept


def test_size_cap_removes_the_oldest_uploads_first(tmp_path):
    ups = [_upload(tmp_path, f"u{i}", (10 - i) * 3600, size=1000) for i in range(5)]
    report = retention.clean(tmp_path, max_age_s=30 * DAY, max_bytes=2500, orphan_grace_s=600)
    assert report.over_size == 3
    assert [u.exists() for u in ups] == [False, False, False, True, True]


def test_orphans_are_removed_only_after_the_grace_period(tmp_path):
    orphan = _upload(tmp_path, "orphan", 3600, record=False)
    in_flight = _upload(tmp_path, "inflight", 5, record=False)  # its record is coming
    (tmp_path / "predictions").mkdir()
    tmp_old = tmp_path / "predictions" / ".x.json.abc.tmp"
    tmp_old.write_bytes(b"half")
    _age(tmp_old, 3600)
    tmp_new = tmp_path / "uploads" / ".y.png.def.tmp"
    tmp_new.write_bytes(b"half")
    report = retention.clean(tmp_path, max_age_s=30 * DAY, max_bytes=1e9, orphan_grace_s=600)
    assert (report.orphan_uploads, report.temp_files) == (1, 1)
    assert not orphan.exists() and not tmp_old.exists()
    assert in_flight.exists() and tmp_new.exists()


def test_clean_once_takes_the_lock_and_reads_the_config(tmp_path):
    cfg = load_config(environ={"RADIO_DATA_DIR": str(tmp_path), "RADIO_ORPHAN_GRACE_S": "0",
                               "RADIO_UPLOAD_MAX_AGE_DAYS": "1"})
    _upload(tmp_path, "orphan", 10, record=False)
    _upload(tmp_path, "old", 2 * DAY)
    report = retention.clean_once(cfg)
    assert report is not None and (report.orphan_uploads, report.expired) == (1, 1)
    # While another process holds the lock, a pass is skipped rather than doubled.
    import fcntl

    with open(tmp_path / ".retention.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert retention.clean_once(cfg) is None


def test_missing_data_dir_is_not_an_error(tmp_path):
    assert retention.clean(tmp_path / "none", 1, 1, 1) == retention.Report()
