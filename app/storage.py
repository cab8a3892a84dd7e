"""Durable storage of uploads and prediction records under RADIO_DATA_DIR.

Layout: ``uploads/<id>.<ext>`` (the bytes exactly as received) and
``predictions/<id>.json`` (what the model answered, or why it could not). Every file is
written to a temporary name, fsynced and renamed with ``os.replace``, so a crash never
leaves a half-written file under a final name. No original file name is ever stored.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from app.errors import APIError

EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "DICOM": "dcm"}


class StorageError(APIError):
    """The data directory cannot take the file (full disk, read-only, no permission): 507.

    ``analysed``: the model had answered, but its record could not be kept; the answer is
    withheld (an answer Radio cannot account for later is not given) and the upload removed.
    """

    def __init__(self, request_id: str | None = None, analysed: bool = False) -> None:
        what = (
            "Radio analysed the image but cannot store the result (the server's storage is "
            "full or not writable), so the answer is not shown and nothing was kept."
            if analysed
            else "Radio cannot store the upload (the server's storage is full or not "
            "writable); nothing was analysed."
        )
        super().__init__(507, f"{what} Please tell the service administrators.", request_id)


def upload_path(data_dir: Path, request_id: str, fmt: str) -> Path:
    """Where the upload of ``request_id`` is stored."""
    return data_dir / "uploads" / f"{request_id}.{EXTENSIONS.get(fmt, 'bin')}"


def check(data_dir: Path, min_free_mb: float) -> tuple[bool, str]:
    """``(ok, detail)``: the data directory exists or can be made, is writable, and has at
    least ``min_free_mb`` MB free for an unprivileged process."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        st = os.statvfs(data_dir)
    except OSError as exc:
        return False, f"data directory unusable: {exc.strerror}"
    if not os.access(data_dir, os.W_OK | os.X_OK):
        return False, "data directory is not writable"
    free_mb = st.f_bavail * st.f_frsize / 2**20
    if free_mb < min_free_mb:
        return False, f"only {free_mb:,.0f} MB free, below the {min_free_mb:,.0f} MB minimum"
    return True, f"writable, {free_mb:,.0f} MB free"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    # The rename itself is only durable once the directory entry is on disk.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_upload(data_dir: Path, request_id: str, data: bytes, fmt: str) -> Path:
    """Store the uploaded bytes; StorageError (507) on any OSError."""
    path = upload_path(data_dir, request_id, fmt)
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise StorageError(request_id) from exc
    return path


def save_record(
    data_dir: Path, request_id: str, record: dict[str, Any], analysed: bool = False
) -> Path:
    """Store one prediction record as JSON; StorageError (507) on any OSError."""
    path = data_dir / "predictions" / f"{request_id}.json"
    try:
        atomic_write(path, json.dumps(record, indent=1, sort_keys=True).encode("utf-8"))
    except OSError as exc:
        raise StorageError(request_id, analysed=analysed) from exc
    return path


def discard_upload(data_dir: Path, request_id: str, fmt: str) -> None:
    """Remove a stored upload whose record could not be written (best effort: the orphan
    cleaner of :mod:`app.retention` removes it later otherwise)."""
    try:
        upload_path(data_dir, request_id, fmt).unlink(missing_ok=True)
    except OSError:
        pass
