"""Durable files under RADIO_DATA_DIR: atomic writes, the free-space check, and the 507
answer when the disk refuses.

Every file is written to a temporary name, fsynced and renamed with ``os.replace``, so a
crash never leaves a half-written file under a final name. What a request keeps (the image
once by content, its prediction row) is in ``app/store/images.py`` and ``app/clinical/records.py``;
Radio versions before the database also wrote ``uploads/`` and ``predictions/*.json`` here,
imported by the migration ``0002``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from app.platform.errors import APIError


class StorageError(APIError):
    """The data directory cannot take the file (full disk, read-only, no permission): 507.

    ``analysed``: the model had answered, but its record could not be kept; the answer is
    withheld (an answer Radio cannot account for later is not given). ``image_left``: the
    image was stored before the record failed; without a row, it goes at the next retention
    pass (app/store/retention.py), and the message says so rather than "nothing was kept".
    """

    def __init__(self, request_id: str | None = None, analysed: bool = False,
                 image_left: bool = False) -> None:
        kept = ("the image stays on the server until the next clean-up removes it"
                if image_left else "nothing was kept")
        what = (
            "Radio analysed the image but cannot store the result (the server's storage is "
            f"full or not writable), so the answer is not shown and {kept}."
            if analysed
            else "Radio cannot store the upload (the server's storage is full or not "
            "writable); nothing was analysed."
        )
        super().__init__(507, f"{what} Please tell the service administrators.", request_id)


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
