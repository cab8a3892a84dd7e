"""Images kept once by content: ``<data dir>/images/<sha256[:2]>/<sha256>.<ext>``.

The name is the SHA-256 of the stored bytes (the upload itself, or the de-identified DICOM),
never anything a user chose; storing the same image twice writes nothing new.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from app import storage

EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "DICOM": "dcm"}
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "DICOM": "application/dicom"}


def path_for(data_dir: Path, sha256: str, fmt: str) -> Path:
    """Where the image with this hash and format lives."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a SHA-256 hex digest")
    return Path(data_dir) / "images" / sha256[:2] / f"{sha256}.{EXTENSIONS.get(fmt, 'bin')}"


def store(data_dir: Path, data: bytes, fmt: str) -> str:
    """Keep ``data`` (atomically, durably) unless already kept; its SHA-256."""
    sha = hashlib.sha256(data).hexdigest()
    path = path_for(data_dir, sha, fmt)
    if not path.exists():
        try:
            storage.atomic_write(path, data)
        except OSError as exc:
            raise storage.StorageError() from exc
    return sha
