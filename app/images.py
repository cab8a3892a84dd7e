"""Images kept once by content: ``<sha256[:2]>/<sha256>.<ext>`` in the image store.

The store is a local folder (default ``<data dir>/images``) or an S3 prefix
(``RADIO_IMAGE_STORE=s3://bucket/prefix``, through boto3 with the host's AWS credentials).
The name is the SHA-256 of the stored bytes (the upload itself, or the de-identified DICOM),
never anything a user chose; storing the same image twice writes nothing new.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from app import storage

EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "DICOM": "dcm"}
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "DICOM": "application/dicom"}


class ImageMissing(LookupError):
    """No stored image with that hash."""


def location(cfg: Any) -> str | Path:
    """The image store of a Config: RADIO_IMAGE_STORE, else ``<data dir>/images``."""
    return cfg.image_store or Path(cfg.data_dir) / "images"


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
    """Keep ``data`` (atomically, durably) unless already kept; its SHA-256."""
    sha = hashlib.sha256(data).hexdigest()
    name = _name(sha, fmt)
    if isinstance(where, str) and where.startswith("s3://"):
        client, bucket, prefix = _s3(where)
        key = f"{prefix}/{name}" if prefix else name
        try:
            # S3 writes are atomic; the same content under the same key needs no rewrite.
            client.head_object(Bucket=bucket, Key=key)
        except client.exceptions.ClientError:
            client.put_object(Bucket=bucket, Key=key, Body=data,
                              ChecksumAlgorithm="SHA256", ServerSideEncryption="AES256")
        return sha
    path = Path(where) / name
    if not path.exists():
        try:
            storage.atomic_write(path, data)
        except OSError as exc:
            raise storage.StorageError() from exc
    return sha


def load(where: str | Path, sha256: str, fmt: str) -> bytes:
    """The stored bytes; ImageMissing when there are none."""
    name = _name(sha256, fmt)
    if isinstance(where, str) and where.startswith("s3://"):
        client, bucket, prefix = _s3(where)
        key = f"{prefix}/{name}" if prefix else name
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey as exc:
            raise ImageMissing(sha256) from exc
    try:
        return (Path(where) / name).read_bytes()
    except OSError as exc:
        raise ImageMissing(sha256) from exc
