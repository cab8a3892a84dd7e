"""Images kept once by content: ``<sha256[:2]>/<sha256>.<ext>`` in the image store.

The store is a local folder (default ``<data dir>/images``) or an S3 prefix
(``RADIO_IMAGE_STORE=s3://bucket/prefix``, through boto3 with the host's AWS credentials).
The name is the SHA-256 of the stored bytes (the upload itself, or the de-identified DICOM),
never anything a user chose; storing the same image twice writes nothing new, but marks it
as just stored (its modification time), which is what lets :func:`remove` (the retention
pass, ``app/store/retention.py``) never delete an image a request is storing at that moment.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.platform.failures import StorageFull
from app.store import storage

EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "DICOM": "dcm"}
# The PNG a browser is shown of a stored DICOM (app/intake/dicom.py renders it once, at intake),
# beside it: ``<sha of the DICOM>.dcm.png``. Not an image of its own: listing() skips it and
# remove() takes it with its DICOM.
RENDERING = "dcm.png"
_FORMATS = {ext: fmt for fmt, ext in EXTENSIONS.items()}
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "DICOM": "application/dicom"}


class ImageMissing(LookupError):
    """No stored image with that hash."""


def location(cfg: Any) -> str | Path:
    """The image store of a Config: RADIO_IMAGE_STORE, else ``<data dir>/images``."""
    from radio_config import image_store  # one answer for the app and the jobs

    return image_store(cfg.data_dir, cfg.image_store)


def _name(sha256: str, fmt: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ImageMissing("not a SHA-256 hex digest")
    return f"{sha256[:2]}/{sha256}.{EXTENSIONS.get(fmt, 'bin')}"


def _s3(where: str) -> tuple[Any, str, str]:
    """(client, bucket, key prefix) of ``s3://bucket/prefix``."""
    import boto3  # only when an S3 store is configured

    bucket, _, prefix = where.removeprefix("s3://").partition("/")
    return boto3.client("s3"), bucket, prefix.strip("/")


def store(where: str | Path, data: bytes, fmt: str) -> str:
    """Keep ``data`` (atomically, durably) unless already kept; its SHA-256. Either way the
    stored image is now marked as just stored."""
    sha = hashlib.sha256(data).hexdigest()
    _write(where, _name(sha, fmt), data)
    return sha


def store_rendering(where: str | Path, sha256: str, png: bytes) -> None:
    """Keep the PNG rendering of the stored DICOM ``sha256`` beside it."""
    _write(where, _rendering_name(sha256), png)


def load_rendering(where: str | Path, sha256: str) -> bytes:
    """The PNG rendering of the stored DICOM ``sha256``; ImageMissing when there is none."""
    return _read(where, _rendering_name(sha256))


def _rendering_name(sha256: str) -> str:
    return _name(sha256, "DICOM").removesuffix(".dcm") + "." + RENDERING


def _write(where: str | Path, name: str, data: bytes) -> None:
    if isinstance(where, str) and where.startswith("s3://"):
        client, bucket, prefix = _s3(where)
        # S3 writes are atomic; writing again renews LastModified, the "just stored" mark.
        client.put_object(Bucket=bucket, Key=f"{prefix}/{name}" if prefix else name,
                          Body=data, ChecksumAlgorithm="SHA256",
                          ServerSideEncryption="AES256")
        return
    path = Path(where) / name
    try:
        # Touching is the existence check: it either renews a file that stays (remove()
        # then sees it is new) or fails because the file is gone, and it is written again.
        os.utime(path)
    except FileNotFoundError:
        try:
            storage.atomic_write(path, data)
        except OSError as exc:
            raise StorageFull() from exc
    except OSError as exc:
        raise StorageFull() from exc


@dataclass(frozen=True)
class Stored:
    """One image in the store."""

    sha256: str
    fmt: str
    mtime: float  # when it was last stored (seconds since the epoch)
    size: int


def listing(where: str | Path) -> Iterator[Stored]:
    """Every image in the store (files with other names are not Radio's images)."""
    if isinstance(where, str) and where.startswith("s3://"):
        client, bucket, prefix = _s3(where)
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
        for page in pages:
            for obj in page.get("Contents", []):
                stored = _parse(obj["Key"].rsplit("/", 1)[-1],
                                obj["LastModified"].timestamp(), obj["Size"])
                if stored is not None:
                    yield stored
        return
    root = Path(where)
    if not root.is_dir():
        return
    for folder in root.iterdir():
        if len(folder.name) != 2 or not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                stored = _parse(entry.name, st.st_mtime, st.st_size)
                if stored is not None:
                    yield stored


def _parse(filename: str, mtime: float, size: int) -> Stored | None:
    sha, _, ext = filename.partition(".")
    if ext not in _FORMATS or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        return None
    return Stored(sha, _FORMATS[ext], mtime, size)


def remove(where: str | Path, sha256: str, fmt: str, stored_before: float) -> bool:
    """Delete the image unless it was (re)stored at or after ``stored_before`` (seconds since
    the epoch); True when deleted.

    A local file is first renamed aside, then its time is read: a request that stored the
    same image just before the rename left a new time (the file is put back), one that came
    after found no file and wrote a new one. On S3 the time is read just before deleting.
    """
    name = _name(sha256, fmt)
    if isinstance(where, str) and where.startswith("s3://"):
        client, bucket, prefix = _s3(where)
        key = f"{prefix}/{name}" if prefix else name
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except client.exceptions.ClientError:
            return False
        if head["LastModified"].timestamp() >= stored_before:
            return False
        client.delete_object(Bucket=bucket, Key=key)
        if fmt == "DICOM":
            rendering = _rendering_name(sha256)
            client.delete_object(Bucket=bucket, Key=f"{prefix}/{rendering}" if prefix
                                 else rendering)
        return True
    path = Path(where) / name
    aside = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.del")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    if aside.stat().st_mtime >= stored_before:
        os.replace(aside, path)  # stored again meanwhile: it stays
        return False
    aside.unlink()
    if fmt == "DICOM":
        # Stored again just now, it is rendered again on its next view (app/intake/intake.py).
        (Path(where) / _rendering_name(sha256)).unlink(missing_ok=True)
    return True


def put_back(where: str | Path) -> int:
    """Files a killed :func:`remove` left aside go back under their names (the next pass
    decides on them again); how many."""
    if isinstance(where, str) and where.startswith("s3://"):
        return 0
    count = 0
    root = Path(where)
    for aside in root.glob("??/.*.del") if root.is_dir() else ():
        sha, ext = aside.name[1:].split(".")[:2]
        original = aside.with_name(f"{sha}.{ext}")
        if not original.exists():
            os.replace(aside, original)
            count += 1
        else:
            aside.unlink()
    return count


def load(where: str | Path, sha256: str, fmt: str) -> bytes:
    """The stored bytes; ImageMissing when there are none."""
    return _read(where, _name(sha256, fmt))


def _read(where: str | Path, name: str) -> bytes:
    if isinstance(where, str) and where.startswith("s3://"):
        client, bucket, prefix = _s3(where)
        key = f"{prefix}/{name}" if prefix else name
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey as exc:
            raise ImageMissing(name) from exc
    try:
        return (Path(where) / name).read_bytes()
    except OSError as exc:
        raise ImageMissing(name) from exc
