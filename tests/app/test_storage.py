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
