"""Durable files under RADIO_DATA_DIR: atomic writes and the free-space check.

When the disk refuses, the image store raises ``app.platform.failures.StorageFull``.

Every file is written to a temporary name, fsynced and renamed with ``os.replace``, so a
crash never leaves a half-written file under a final name. What a request keeps (the image
once by content, its prediction row) is in ``app/store/images.py`` and
``app/clinical/records.py``; Radio versions before the database also wrote ``uploads/`` and
``predictions/*.json`` here, imported by the migration ``0002``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
    sync_dir(path.parent)


def sync_dir(folder: Path) -> None:
    """Make the entries of ``folder`` (a file or folder just renamed into it) durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
