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
    """The data directory cannot take the file (full disk, read-only, no permission): 507."""

    def __init__(self, request_id: str | None = None) -> None:
        super().__init__(
            507,
            "Radio cannot store the upload (the server's storage is full or not writable); "
            "nothing was analysed. Please tell the service administrators.",
            request_id,
        )


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
    path = data_dir / "uploads" / f"{request_id}.{EXTENSIONS.get(fmt, 'bin')}"
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise StorageError(request_id) from exc
    return path


def save_record(data_dir: Path, request_id: str, record: dict[str, Any]) -> Path:
    """Store one prediction record as JSON; StorageError (507) on any OSError."""
    path = data_dir / "predictions" / f"{request_id}.json"
    try:
        atomic_write(path, json.dumps(record, indent=1, sort_keys=True).encode("utf-8"))
    except OSError as exc:
        raise StorageError(request_id) from exc
    return path
