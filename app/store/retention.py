"""Bounded storage: retention of stored images and removal of orphans, at start and
periodically.

Each upload is kept once, in the image store (``app/store/images.py``), and referenced by its
prediction rows (``predictions.image_sha256``; contributions are rows too). A pass:

* keeps every prediction row: they are small and are the audit trail;
* keeps the images a radiologist reviewed (dataset material) or still has to review (a
  flagged answer in the queue);
* deletes the other images once their newest prediction is older than
  RADIO_UPLOAD_MAX_AGE_DAYS, then the oldest of them until the store takes at most
  RADIO_UPLOADS_MAX_MB;
* deletes orphans: images no row refers to (the process died between storing the image and
  committing its row, so the answer was never given), and temporary files of
  :func:`app.store.storage.atomic_write` left by a killed process.

Nothing stored or restored within RADIO_ORPHAN_GRACE_S is touched (a request in flight, or
one storing the same image again, see :func:`app.store.images.remove`). Each gunicorn worker runs
:func:`start` from ``app/platform/wsgi.py``; an advisory file lock lets only one of them clean at a
time.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from app.platform.config import Config
from app.store import db, images
from app.store.db.models import Prediction, Review

log = logging.getLogger("radio.retention")


@dataclass
class Report:
    """What one cleaning pass removed (and put back)."""

    expired: int = 0  # images past the maximum age
    over_size: int = 0  # images removed to get under the size cap
    orphans: int = 0  # images no prediction row refers to
    temp_files: int = 0
    put_back: int = 0  # images a killed pass had set aside


@dataclass(frozen=True)
class _Use:
    newest: float  # creation time of the newest row referring to the image (epoch s)
    kept: bool  # reviewed, or waiting for a review


def _epoch(when: datetime) -> float:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _uses(url: str) -> dict[str, _Use]:
    """Per stored image (SHA-256), how the database uses it."""
    with db.session_scope(url) as s:
        newest = s.execute(select(Prediction.image_sha256, func.max(Prediction.created_at))
                           .group_by(Prediction.image_sha256)).all()
        reviewed = select(Review.prediction_id)
        kept = set(s.scalars(select(Prediction.image_sha256).distinct().where(
            or_(Prediction.needs_review.is_(True), Prediction.id.in_(reviewed)))))
    return {sha: _Use(_epoch(when), sha in kept) for sha, when in newest}


def clean(cfg: Config, now: float | None = None) -> Report:
    """One pass over the image store of ``cfg`` against its database."""
    now = time.time() if now is None else now
    where = images.of(cfg)
    grace_s, max_age_s = cfg.orphan_grace_s, cfg.upload_max_age_days * 86400
    report = Report(put_back=images.put_back(where))
    # Temporary files of interrupted writes (S3 writes are atomic: it has none).
    report.temp_files = where.remove_temp_files(grace_s, now)
    stored = list(images.listing(where))
    if not stored:
        return report
    uses = _uses(cfg.db_url)
    stored_before = now - grace_s
    left: list[tuple[float, images.Stored]] = []  # (newest use, image) that may go for size
    total = 0
    for image in stored:
        use = uses.get(image.sha256)
        if image.mtime >= stored_before:
            total += image.size  # just stored: in flight, or in use again
        elif use is None:
            report.orphans += images.remove(where, image.sha256, image.fmt, stored_before)
        elif use.kept:
            total += image.size
        elif now - use.newest > max_age_s:
            report.expired += images.remove(where, image.sha256, image.fmt, stored_before)
        else:
            total += image.size
            left.append((use.newest, image))
    max_bytes = cfg.uploads_max_mb * 2**20
    for _newest, image in sorted(left, key=lambda u: u[0]):
        if total <= max_bytes:
            break
        if images.remove(where, image.sha256, image.fmt, stored_before):
            report.over_size += 1
            total -= image.size
    if total > max_bytes:
        log.warning("retention: the image store holds %.0f MB, above RADIO_UPLOADS_MAX_MB, "
                    "in images that are reviewed, awaiting review or just stored",
                    total / 2**20)
    return report


def clean_once(cfg: Config) -> Report | None:
    """One pass under the data directory's lock; None when another process holds it or the
    pass failed (logged)."""
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
        report = clean(cfg)
        if any(vars(report).values()):
            log.info("retention: %s", vars(report))
        return report
    except (OSError, SQLAlchemyError) as exc:
        # Never fatal: a database not migrated yet or an unreachable store waits for the
        # next pass; nothing is deleted without knowing how the database uses it.
        log.error("retention pass failed: %s", exc)
        return None
    except Exception:  # S3 (botocore) errors: the loop must survive them too
        log.exception("retention pass failed")
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

