"""app/storage.py: atomic, durable writes and a 507 when the disk refuses."""

import errno
import json
import os

import pytest

from app import storage


def test_upload_and_record_are_written_atomically(tmp_path):
    up = storage.save_upload(tmp_path, "abc", b"\x89PNG data", "PNG")
    rec = storage.save_record(tmp_path, "abc", {"id": "abc", "label": "Normal"})
    assert up == tmp_path / "uploads" / "abc.png" and up.read_bytes() == b"\x89PNG data"
    assert json.loads(rec.read_text()) == {"id": "abc", "label": "Normal"}
    assert storage.save_upload(tmp_path, "j", b"\xff\xd8\xff", "JPEG").suffix == ".jpg"
    # No temporary file is left behind.
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == ["abc.png", "j.jpg"]


def test_data_dir_that_is_a_file_gives_507(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(storage.StorageError) as info:
        storage.save_upload(blocker, "abc", b"data", "PNG")
    assert info.value.status == 507 and info.value.request_id == "abc"
    assert "storage" in info.value.message


def test_full_disk_leaves_no_partial_file(tmp_path, monkeypatch):
    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(storage.StorageError):
        storage.save_record(tmp_path, "abc", {"id": "abc"})
    assert list((tmp_path / "predictions").iterdir()) == []


def test_check_reports_free_space_and_unusable_folders(tmp_path):
    ok, detail = storage.check(tmp_path / "data", min_free_mb=1)
    assert ok and detail.startswith("writable, ") and detail.endswith(" MB free")
    ok, detail = storage.check(tmp_path / "data", min_free_mb=1e12)
    assert not ok and "below the" in detail
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ok, detail = storage.check(blocker / "data", min_free_mb=1)
    assert not ok and detail.startswith("data directory unusable")


def test_discard_upload_removes_only_that_upload(tmp_path):
    storage.save_upload(tmp_path, "a", b"1", "PNG")
    storage.save_upload(tmp_path, "b", b"2", "JPEG")
    storage.discard_upload(tmp_path, "a", "PNG")
    storage.discard_upload(tmp_path, "a", "PNG")  # already gone: no error
    assert [p.name for p in (tmp_path / "uploads").iterdir()] == ["b.jpg"]


def test_record_failure_after_analysis_says_so():
    err = storage.StorageError("abc", analysed=True)
    assert err.status == 507 and err.message.startswith("Radio analysed the image")
