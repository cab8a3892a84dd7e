"""Images kept once by content: ``<sha256[:2]>/<sha256>.<ext>`` in the image store.

The store is a local folder (default ``<data dir>/images``, :class:`LocalStore`) or an S3
prefix (``RADIO_IMAGE_STORE=s3://bucket/prefix``, :class:`S3Store`, through boto3 with the
host's AWS credentials), both behind :class:`ImageStore`; which one is ``radio_config``'s
answer (:func:`open_store`), so no other module tells a folder from a bucket.
The name is the SHA-256 of the stored bytes (the upload itself, or the de-identified DICOM),
never anything a user chose; storing the same image twice writes nothing new, but marks it
as just stored (its modification time), which is what lets :func:`remove` (the retention
pass, ``app/store/retention.py``) never delete an image a request is storing at that moment.
"""

from __future__ import annotations

import hashlib
import os
import time
from abc import ABC, abstractmethod
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
    """The image store's address of a Config: RADIO_IMAGE_STORE, else ``<data dir>/images``."""
    from radio_config import image_store  # one answer for the app and the jobs

    return image_store(cfg.data_dir, cfg.image_store)


def of(cfg: Any) -> ImageStore:
    """The image store of a Config."""
    return open_store(location(cfg))


def _name(sha256: str, fmt: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ImageMissing("not a SHA-256 hex digest")
    return f"{sha256[:2]}/{sha256}.{EXTENSIONS.get(fmt, 'bin')}"


def _rendering_name(sha256: str) -> str:
    return _name(sha256, "DICOM").removesuffix(".dcm") + "." + RENDERING


@dataclass(frozen=True)
class Stored:
    """One image in the store."""

    sha256: str
    fmt: str
    mtime: float  # when it was last stored (seconds since the epoch)
    size: int


def _parse(filename: str, mtime: float, size: int) -> Stored | None:
    sha, _, ext = filename.partition(".")
    if ext not in _FORMATS or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        return None
    return Stored(sha, _FORMATS[ext], mtime, size)


class ImageStore(ABC):
    """Where the images are: bytes under the names :func:`_name` gives."""

    @abstractmethod
    def write(self, name: str, data: bytes) -> None:
        """Keep ``data`` under ``name`` (atomically, durably), or renew the kept copy's
        "just stored" mark when there is one; StorageFull when the store refuses."""

    @abstractmethod
    def read(self, name: str) -> bytes:
        """The bytes under ``name``; ImageMissing when there are none."""

    @abstractmethod
    def listing(self) -> Iterator[Stored]:
        """Every image in the store (files with other names are not Radio's images)."""

    @abstractmethod
    def remove(self, sha256: str, fmt: str, stored_before: float) -> bool:
        """See :func:`remove`."""

    def put_back(self) -> int:
        """Images a killed :meth:`remove` left aside, back under their names; how many."""
        return 0

    def remove_temp_files(self, grace_s: float, now: float) -> int:
        """Temporary files of interrupted writes older than ``grace_s``, removed; how many."""
        return 0

    @abstractmethod
    def check(self, min_free_mb: float) -> tuple[bool, str]:
        """``(ok, detail)``: whether images can be stored now (for /health)."""


class LocalStore(ImageStore):
    """A folder on this host."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def write(self, name: str, data: bytes) -> None:
        path = self.folder / name
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

    def read(self, name: str) -> bytes:
        try:
            return (self.folder / name).read_bytes()
        except OSError as exc:
            raise ImageMissing(name) from exc

    def listing(self) -> Iterator[Stored]:
        if not self.folder.is_dir():
            return
        for folder in self.folder.iterdir():
            if len(folder.name) != 2 or not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                if entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    stored = _parse(entry.name, st.st_mtime, st.st_size)
                    if stored is not None:
                        yield stored

    def remove(self, sha256: str, fmt: str, stored_before: float) -> bool:
        # Renamed aside first, then its time read: a request that stored the same image just
        # before the rename left a new time (the file is put back), one that came after
        # found no file and wrote a new one.
        path = self.folder / _name(sha256, fmt)
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
            (self.folder / _rendering_name(sha256)).unlink(missing_ok=True)
        return True

    def put_back(self) -> int:
        count = 0
        for aside in self.folder.glob("??/.*.del") if self.folder.is_dir() else ():
            sha, ext = aside.name[1:].split(".")[:2]
            original = aside.with_name(f"{sha}.{ext}")
            if not original.exists():
                os.replace(aside, original)
                count += 1
            else:
                aside.unlink()
        return count

    def remove_temp_files(self, grace_s: float, now: float) -> int:
        removed = 0
        for path in self.folder.glob("??/.*.tmp"):
            try:
                if now - path.stat().st_mtime > grace_s:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass  # another worker was faster
        return removed

    def check(self, min_free_mb: float) -> tuple[bool, str]:
        ok, detail = storage.check(self.folder, min_free_mb)
        return ok, detail.replace("data directory", "image folder")


class S3Store(ImageStore):
    """A prefix of an S3 bucket. S3 writes are atomic (no temporary files, nothing set
    aside); writing again renews LastModified, the "just stored" mark."""

    def __init__(self, url: str) -> None:
        self.bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.prefix = prefix.strip("/")

    @staticmethod
    def _client(**config: Any) -> Any:
        import boto3  # only when an S3 store is configured
        from botocore.config import Config as BotoConfig

        return boto3.client("s3", config=BotoConfig(**config)) if config else boto3.client("s3")

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def write(self, name: str, data: bytes) -> None:
        self._client().put_object(Bucket=self.bucket, Key=self._key(name), Body=data,
                                  ChecksumAlgorithm="SHA256", ServerSideEncryption="AES256")

    def read(self, name: str) -> bytes:
        client = self._client()
        try:
            return client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
        except client.exceptions.NoSuchKey as exc:
            raise ImageMissing(name) from exc

    def listing(self) -> Iterator[Stored]:
        pages = self._client().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "")
        for page in pages:
            for obj in page.get("Contents", []):
                stored = _parse(obj["Key"].rsplit("/", 1)[-1],
                                obj["LastModified"].timestamp(), obj["Size"])
                if stored is not None:
                    yield stored

    def remove(self, sha256: str, fmt: str, stored_before: float) -> bool:
        # The time is read just before deleting.
        client, key = self._client(), self._key(_name(sha256, fmt))
        try:
            head = client.head_object(Bucket=self.bucket, Key=key)
        except client.exceptions.ClientError:
            return False
        if head["LastModified"].timestamp() >= stored_before:
            return False
        client.delete_object(Bucket=self.bucket, Key=key)
        if fmt == "DICOM":
            client.delete_object(Bucket=self.bucket, Key=self._key(_rendering_name(sha256)))
        return True

    def check(self, min_free_mb: float) -> tuple[bool, str]:
        """The bucket answers HEAD with these credentials (one request, short timeouts:
        /health never waits on S3 for long). A bucket has no free space to count."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client(connect_timeout=2, read_timeout=2,
                         retries={"max_attempts": 1}).head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            return False, f"bucket {self.bucket} refused ({code})"
        except BotoCoreError as exc:
            return False, f"bucket {self.bucket} unreachable ({type(exc).__name__})"
        return True, f"bucket {self.bucket} reachable"


def open_store(where: str | Path | ImageStore) -> ImageStore:
    """The store at ``where`` (``s3://bucket/prefix`` or a folder); a store is itself."""
    from radio_config import is_s3  # the one place that tells a bucket from a folder

    if isinstance(where, ImageStore):
        return where
    return S3Store(str(where)) if is_s3(where) else LocalStore(where)


def store(where: str | Path | ImageStore, data: bytes, fmt: str) -> str:
    """Keep ``data`` (atomically, durably) unless already kept; its SHA-256. Either way the
    stored image is now marked as just stored."""
    sha = hashlib.sha256(data).hexdigest()
    open_store(where).write(_name(sha, fmt), data)
    return sha


def store_rendering(where: str | Path | ImageStore, sha256: str, png: bytes) -> None:
    """Keep the PNG rendering of the stored DICOM ``sha256`` beside it."""
    open_store(where).write(_rendering_name(sha256), png)


def load_rendering(where: str | Path | ImageStore, sha256: str) -> bytes:
    """The PNG rendering of the stored DICOM ``sha256``; ImageMissing when there is none."""
    return open_store(where).read(_rendering_name(sha256))


def load(where: str | Path | ImageStore, sha256: str, fmt: str) -> bytes:
    """The stored bytes; ImageMissing when there are none."""
    return open_store(where).read(_name(sha256, fmt))


def listing(where: str | Path | ImageStore) -> Iterator[Stored]:
    """Every image in the store (files with other names are not Radio's images)."""
    return open_store(where).listing()


def remove(where: str | Path | ImageStore, sha256: str, fmt: str, stored_before: float) -> bool:
    """Delete the image (and a DICOM's rendering) unless it was (re)stored at or after
    ``stored_before`` (seconds since the epoch); True when deleted."""
    return open_store(where).remove(sha256, fmt, stored_before)


def put_back(where: str | Path | ImageStore) -> int:
    """Files a killed :func:`remove` left aside go back under their names (the next pass
    decides on them again); how many."""
    return open_store(where).put_back()
