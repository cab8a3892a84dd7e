"""The record of every dataset version, in the database (``dataset_versions``, 0010).

A version's folder under ``<data dir>/datasets/<kind>/v<N>`` (its images and
``manifest.csv``) is the artefact; its row says who made it, when, what it holds (images
per class and per source) and the hash of its content, which is how a snapshot that would
only repeat the latest version is recognised. :func:`publish` puts the folder in place and
the row in the session in one step; the caller's commit makes the version exist.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.store import storage
from app.store.db.models import DatasetVersion, utcnow

# What an old JSONL log entry held besides the counts; kept in ``detail``.
DETAIL_KEYS = ("missing_images", "initial", "production")


def content_sha256(rows: Iterable[Mapping[str, Any]]) -> str:
    """SHA-256 of the sorted (image, label) pairs: the image's hash, or for a public image
    (no hash in the manifest) its file. The same formula as migration 0010 imported with."""
    pairs = sorted(f"{r.get('sha256') or r.get('file', '')}\t{r.get('label', '')}"
                   for r in rows)
    return hashlib.sha256("\n".join(pairs).encode()).hexdigest()


def entry(row: DatasetVersion) -> dict[str, Any]:
    """A version as the pages and the CLI show it (the JSONL log's old shape)."""
    return {"version": row.version, "created_utc": row.created_at.isoformat(timespec="seconds"),
            "by": row.created_by, "images": row.images, "per_class": row.per_class,
            "per_source": row.per_source, **(row.detail or {}),
            "content_sha256": row.content_sha256, "artefact": row.artefact}


def versions(session: Session, kind: str) -> list[dict[str, Any]]:
    """Every ``kind`` version (production or reference), oldest first."""
    rows = session.scalars(select(DatasetVersion).where(DatasetVersion.kind == kind)
                           .order_by(DatasetVersion.version))
    return [entry(row) for row in rows]


def find(session: Session, kind: str, number: int) -> DatasetVersion | None:
    """The record of ``kind`` version ``number``, None when there is none."""
    return session.scalar(select(DatasetVersion).where(DatasetVersion.kind == kind,
                                                       DatasetVersion.version == number))


def latest(session: Session, kind: str) -> DatasetVersion | None:
    """The newest ``kind`` version, None before the first."""
    return session.scalar(select(DatasetVersion).where(DatasetVersion.kind == kind)
                          .order_by(DatasetVersion.version.desc()).limit(1))


def next_version(session: Session, folder: Path, kind: str) -> int:
    """The number the next ``kind`` version gets: after every recorded one and every
    ``v<N>`` folder in ``folder`` (a folder whose commit failed, or a version of a log the
    migration did not see, is never overwritten)."""
    made = session.scalar(select(func.max(DatasetVersion.version))
                          .where(DatasetVersion.kind == kind)) or 0
    on_disk = [int(p.name[1:]) for p in folder.glob("v*") if p.name[1:].isdigit()]
    return max([made, *on_disk]) + 1


def publish(session: Session, data_dir: Path, kind: str, number: int, tmp: Path,
            rows: list[dict[str, Any]], counts: dict[str, Any], by: str,
            detail: dict[str, Any] | None = None) -> DatasetVersion:
    """Record the finished folder ``tmp`` as ``kind`` version ``number`` (holding ``rows``,
    its manifest) and rename it into place, beside it as ``v<number>``.

    The row is flushed first: the database's UNIQUE (kind, version) refuses a concurrent
    twin before any folder moves. The folder is renamed next and its directory synced, so
    once the caller commits, the version and its files both exist. Should the commit fail,
    the folder stays without a row: no page lists it, and :func:`next_version` skips its
    number.
    """
    final = tmp.with_name(f"v{number}")
    row = DatasetVersion(kind=kind, version=number, created_at=utcnow(), created_by=by[:64],
                         content_sha256=content_sha256(rows), images=counts["images"],
                         per_class=counts["per_class"], per_source=counts["per_source"],
                         detail=detail or None,
                         artefact=str(final.relative_to(Path(data_dir))))
    session.add(row)
    session.flush()
    os.replace(tmp, final)
    storage.sync_dir(final.parent)
    return row
