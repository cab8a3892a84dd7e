"""Bounded storage: retention of uploads and removal of orphans, at start and periodically.

* Records (``predictions/*.json``) are kept: they are small and are the audit trail.
* Uploads older than RADIO_UPLOAD_MAX_AGE_DAYS are deleted, then the oldest uploads until
  all of them together take at most RADIO_UPLOADS_MAX_MB.
* Orphans, once older than RADIO_ORPHAN_GRACE_S (so a request in flight is never touched):
  temporary files of :func:`app.storage.atomic_write` left by a killed process, and uploads
  with no record (the process died between the two writes, which were never acknowledged).

Each gunicorn worker runs :func:`start` from ``app/wsgi.py``; an advisory file lock lets
only one of them clean at a time.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.config import Config

log = logging.getLogger("radio.retention")


@dataclass
class Report:
    """What one cleaning pass removed."""

    expired: int = 0  # uploads past the maximum age
    over_size: int = 0  # uploads removed to get under the size cap
    orphan_uploads: int = 0
    temp_files: int = 0


def _files(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return [e for e in it if e.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _remove(entry: os.DirEntry) -> bool:
    try:
        os.unlink(entry.path)
        return True
    except FileNotFoundError:
        return False  # another worker was faster


def clean(
    data_dir: Path,
    max_age_s: float,
    max_bytes: float,
    orphan_grace_s: float,
    now: float | None = None,
) -> Report:
    """One pass over ``data_dir``; returns what was removed."""
    now = time.time() if now is None else now
    report = Report()
    records = {e.name.removesuffix(".json") for e in _files(data_dir / "predictions")}
    uploads = []
    for folder in (data_dir / "uploads", data_dir / "predictions"):
        for entry in _files(folder):
            try:
                mtime = entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            old_enough = now - mtime > orphan_grace_s
            if entry.name.endswith(".tmp"):
                report.temp_files += old_enough and _remove(entry)
            elif folder.name == "uploads":
                if old_enough and entry.name.split(".")[0] not in records:
                    report.orphan_uploads += _remove(entry)
                elif now - mtime > max_age_s:
                    report.expired += _remove(entry)
                else:
                    uploads.append((mtime, entry))
    total = sum(e.stat(follow_symlinks=False).st_size for _, e in uploads)
    for _mtime, entry in sorted(uploads, key=lambda u: u[0]):
        if total <= max_bytes:
            break
        size = entry.stat(follow_symlinks=False).st_size
        if _remove(entry):
            report.over_size += 1
            total -= size
    return report


def clean_once(cfg: Config) -> Report | None:
    """One pass under the data directory's lock; None when another process holds it."""
    try:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        lock = open(cfg.data_dir / ".retention.lock", "a")  # noqa: SIM115 - closed below
    except OSError as exc:
        log.error("retention: data directory unusable: %s", exc.strerror)
        return None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        report = clean(cfg.data_dir, cfg.upload_max_age_days * 86400,
                       cfg.uploads_max_mb * 2**20, cfg.orphan_grace_s)
        if any(vars(report).values()):
            log.info("retention: removed %s", vars(report))
        return report
    except OSError as exc:
        log.error("retention pass failed: %s", exc)
        return None
    finally:
        lock.close()


def start(cfg: Config) -> threading.Thread | None:
    """Clean now (before this worker serves), then every RADIO_CLEANUP_INTERVAL_S (if > 0)
    in a daemon thread. A worker that finds the lock taken serves at once: another one is
    cleaning."""
    clean_once(cfg)
    if cfg.cleanup_interval_s <= 0:
        return None

    def loop() -> None:
        while True:
            time.sleep(cfg.cleanup_interval_s)
            clean_once(cfg)

    thread = threading.Thread(target=loop, name="radio-retention", daemon=True)
    thread.start()
    return thread
