"""app/store/storage.py: atomic, durable writes, the free-space check, and the 507 errors."""

import errno
import os

import pytest

from app.platform.errors import describe
from app.platform.failures import StorageFull
from app.store import storage


def test_atomic_write_replaces_whole_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "a" / "b.bin"
    storage.atomic_write(path, b"first")
    storage.atomic_write(path, b"second, longer")
    assert path.read_bytes() == b"second, longer"
    assert [p.name for p in path.parent.iterdir()] == ["b.bin"]


def test_full_disk_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    path = tmp_path / "b.bin"
    storage.atomic_write(path, b"old")

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        storage.atomic_write(path, b"new")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["b.bin"]


def test_check_reports_free_space_and_unusable_folders(tmp_path):
    ok, detail = storage.check(tmp_path / "data", min_free_mb=1)
    assert ok and detail.startswith("writable, ") and detail.endswith(" MB free")
    ok, detail = storage.check(tmp_path / "data", min_free_mb=1e12)
    assert not ok and "below the" in detail
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ok, detail = storage.check(blocker / "data", min_free_mb=1)
    assert not ok and detail.startswith("data directory unusable")


def test_the_two_507_messages_say_whether_the_image_was_analysed():
    (status, before), (again, after) = (describe(StorageFull("abc")),
                                        describe(StorageFull("abc", analysed=True)))
    assert status == again == 507 and StorageFull("abc").request_id == "abc"
    assert before.startswith("Radio cannot store the upload")
    assert "nothing was analysed" in before
    assert after.startswith("Radio analysed the image")
    assert "answer is not shown" in after


def test_the_sqlite_database_is_readable_by_its_owner_only(make_app, model_server, data_dir):
    """radio.db holds password hashes and who saw which image (issue 26: it was 0644), and
    an existing world-readable one is made private again."""
    import stat

    import accounts

    from app.store import db

    accounts.bearer_client(make_app(mlflow_url=model_server,  # creates and migrates it
                                    database_url=db.default_url(data_dir)))

    database = data_dir / "radio.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    database.chmod(0o644)
    db.dispose_all()
    db.get_engine(db.default_url(data_dir))
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for side in data_dir.glob("radio.db-*"):
        assert stat.S_IMODE(side.stat().st_mode) == 0o600, side.name
