"""Versioned datasets built from radiologist-validated images.

Under ``<data dir>/datasets/``:

* ``production/v<N>/<class>/<sha256>.<ext>`` with ``manifest.csv``: a snapshot of every
  image whose reviewers agree on its label (``app.clinical.reviews``: an image with disagreeing
  reviewers, or a "don't know", never enters), one file per distinct image;
* ``reference/v<N>/<source>/{train,val}/<class>/...`` with ``manifest.csv``: the initial
  public sources plus chosen production versions, each production image under a source
  named after where it came from (``production-<institution or site>``), so training keeps
  sources apart and reports each one (``python -m training train --data <folder>/*/``).
  Production images are split train/val by their hash (one in five to val), so an image
  is on the same side in every reference version;
* the version log (who, when, what, counts, content hash) in the database
  (``app.datasets.version_log``; the ``<kind>/versions.jsonl`` files of earlier Radio
  versions were imported by migration 0010).

Each manifest row: file, sha256, label, source, site, validated_by, prediction_id.
De-identified DICOMs are written as the 8-bit PNG the model reads (training reads PNG/JPEG).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.accounts import audit
from app.clinical import reviews
from app.datasets import version_log
from app.store import images, storage
from app.store.db.models import DatasetVersion, Prediction, Review

FIELDS = ("file", "sha256", "label", "source", "site", "validated_by", "prediction_id")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class DatasetError(ValueError):
    """A dataset request that cannot be done; the message is for the operator."""


def root(data_dir: Path) -> Path:
    """Where the datasets live."""
    return Path(data_dir) / "datasets"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:48] or "unknown"


def production_split(sha256: str) -> str:
    """``train`` or ``val`` for a production image, from its hash: one in five to val, the
    same side in every reference version, every retraining and the promotion gate."""
    return "val" if int(sha256[:8], 16) % 5 == 0 else "train"


def production_source(source: str) -> str:
    """The training source name of production images from ``source`` (a hospital)."""
    return f"production-{_slug(source)}"


def source_of(pred: Prediction) -> str:
    """Where an image comes from: the DICOM institution, else the site, else unknown."""
    institution = (pred.source or {}).get("institution", "")
    return institution or pred.site or "unknown"


def validated(session: Session) -> list[dict[str, Any]]:
    """One row per distinct image with an agreed label (conflicting duplicates left out)."""
    # Only images with a copy whose stored review state can give a label or a doubt are
    # read (an unreviewed or discarded image gives neither): the database filters, by the
    # state app/store/db/review_state.py keeps on every write.
    reviewed = select(Prediction.image_sha256).where(
        Prediction.review_state.in_(("agreed", "disagreement", "unknown")))
    preds = session.scalars(
        select(Prediction).where(Prediction.image_sha256.in_(reviewed))
        .options(selectinload(Prediction.reviews).selectinload(Review.reviewer))
        .order_by(Prediction.created_at)
    ).all()
    by_image: dict[str, dict[str, Any]] = {}
    conflicted: set[str] = set()
    for pred in preds:
        state = reviews.state(pred)
        if state in ("disagreement", "unknown"):
            conflicted.add(pred.image_sha256)  # doubt on any copy keeps the image out
        label = reviews.final_label(pred)
        if label is None:
            continue
        row = {"sha256": pred.image_sha256, "format": pred.image_format, "label": label,
               "source": source_of(pred), "site": pred.site,
               "validated_by": " ".join(sorted({r.reviewer.username
                                                for r in reviews.counting(pred)})),
               "prediction_id": pred.id}
        seen = by_image.get(pred.image_sha256)
        if seen is not None and seen["label"] != label:
            conflicted.add(pred.image_sha256)
        by_image.setdefault(pred.image_sha256, row)
    return [row for sha, row in by_image.items() if sha not in conflicted]


def counts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Images per class and per (source, class)."""
    return {"images": len(rows),
            "per_class": dict(sorted(Counter(r["label"] for r in rows).items())),
            "per_source": dict(sorted(Counter(f"{r['source']} / {r['label']}"
                                              for r in rows).items()))}


def versions(session: Session, kind: str) -> list[dict[str, Any]]:
    """The ``kind`` versions (production or reference), oldest first."""
    return version_log.versions(session, kind)


def _image_bytes(store: str | Path, row: dict[str, Any]) -> tuple[bytes, str]:
    if row["format"] == "DICOM":  # its rendering, stored at intake (app/intake/intake.py)
        try:
            return images.load_rendering(store, row["sha256"]), ".png"
        except images.ImageMissing:
            from app.intake import dicom

            return dicom.load(images.load(store, row["sha256"], "DICOM")).rendering, ".png"
    data = images.load(store, row["sha256"], row["format"])
    return data, "." + images.EXTENSIONS[row["format"]]


def _write_manifest(folder: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    storage.atomic_write(folder / "manifest.csv", buf.getvalue().encode())


def _publish(session: Session, data_dir: Path, kind: str, version: int, tmp: Path,
             rows: list[dict[str, Any]], by: str,
             detail: dict[str, Any] | None) -> DatasetVersion:
    """:func:`version_log.publish`; DatasetError when another request recorded the same
    number first (the database's UNIQUE (kind, version)): nothing of this one is kept, and
    the session is rolled back so the caller can still answer."""
    try:
        return version_log.publish(session, data_dir, kind, version, tmp, rows, counts(rows),
                                   by, detail)
    except IntegrityError as exc:
        session.rollback()
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetError(f"{kind.capitalize()} version {version} was made by another "
                           "request at the same moment: nothing was made. Try again.") from exc


def snapshot_production(session: Session, data_dir: Path, by: str,
                        user_id: int | None = None,
                        image_store: str | Path | None = None) -> dict[str, Any]:
    """A new production version holding every validated image; its log entry.

    ``image_store`` is where the images are (default ``<data_dir>/images``).
    """
    store = image_store or Path(data_dir) / "images"
    rows = validated(session)
    if not rows:
        raise DatasetError("No validated image yet: nothing to snapshot.")
    version = version_log.next_version(session, root(data_dir) / "production", "production")
    tmp = root(data_dir) / "production" / f".v{version}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    kept, missing = [], 0
    for row in rows:
        try:
            data, suffix = _image_bytes(store, row)
        except images.ImageMissing:
            # Removed by the retention pass since it was validated: the version is made of
            # the images still there, and its log entry says how many were not.
            missing += 1
            continue
        row["file"] = f"{row['label']}/{row['sha256']}{suffix}"
        storage.atomic_write(tmp / row["file"], data)
        kept.append(row)
    if not kept:
        raise DatasetError(f"None of the {len(rows)} validated images is still stored "
                           "(the retention period removed them): nothing to snapshot.")
    rows = kept
    _write_manifest(tmp, rows)
    made = _publish(session, data_dir, "production", version, tmp, rows, by,
                    {"missing_images": missing} if missing else None)
    audit.log(session, "dataset_snapshot", user_id=user_id, target=f"production/v{version}",
              detail={"images": len(rows)})
    return version_log.entry(made)


def _read_manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # no copy when on the same file system
    except OSError:
        shutil.copy2(src, dst)


def build_reference(session: Session, data_dir: Path, initial: Sequence[Path],
                    production: Sequence[int], by: str) -> dict[str, Any]:
    """A reference version: the ``initial`` source folders + the chosen production versions."""
    known = {v["version"] for v in versions(session, "production")}
    unknown = sorted(set(production) - known)
    if unknown:
        raise DatasetError(f"No production version {unknown}; known: {sorted(known)}.")
    for folder in initial:
        if not Path(folder).is_dir():
            raise DatasetError(f"The initial source {folder} does not exist.")
    version = version_log.next_version(session, root(data_dir) / "reference", "reference")
    tmp = root(data_dir) / "reference" / f".v{version}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rows: list[dict[str, Any]] = []
    for folder in initial:
        folder = Path(folder).resolve()
        # The public sources are linked, not copied: they are large and never change.
        (tmp / folder.name).symlink_to(folder, target_is_directory=True)
        for path in sorted(folder.glob("*/*/*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                rows.append({"file": str(Path(folder.name, path.relative_to(folder))),
                             "sha256": "", "label": path.parent.name, "source": folder.name,
                             "site": "", "validated_by": "", "prediction_id": ""})
    seen: set[str] = set()
    for number in sorted(production):
        pfolder = root(data_dir) / "production" / f"v{number}"
        for row in _read_manifest(pfolder):
            if row["sha256"] in seen:
                continue  # a later snapshot repeats the images of an earlier one
            seen.add(row["sha256"])
            split = production_split(row["sha256"])
            name = production_source(row["source"])
            rel = Path(name, split, row["label"], Path(row["file"]).name)
            _link(pfolder / row["file"], tmp / rel)
            for side in ("train", "val"):  # training expects both splits in every source
                (tmp / name / side).mkdir(exist_ok=True)
            rows.append({**row, "file": str(rel), "source": name})
    _write_manifest(tmp, rows)
    made = _publish(session, data_dir, "reference", version, tmp, rows, by,
                    {"initial": [str(Path(p).resolve()) for p in initial],
                     "production": sorted(production)})
    return version_log.entry(made)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m app.datasets.service snapshot | reference | list``."""
    from app.platform.config import load_config
    from app.store import db

    parser = argparse.ArgumentParser(prog="python -m app.datasets.service", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("snapshot", help="new production version from the validated images")
    p.add_argument("--by", default=os.environ.get("USER", "cli"))
    p = sub.add_parser("reference", help="new reference version: initial + production")
    p.add_argument("--initial", nargs="*", type=Path, default=[],
                   help="public source folders (<source>/{train,val}/<class>/)")
    p.add_argument("--production", nargs="*", type=int, default=[], help="version numbers")
    p.add_argument("--by", default=os.environ.get("USER", "cli"))
    sub.add_parser("list", help="print the version logs")
    args = parser.parse_args(argv)
    cfg = load_config()
    db.migrate(cfg.db_url, data_dir=cfg.data_dir)
    try:
        with db.session_scope(cfg.db_url) as session:
            if args.command == "snapshot":
                entry = snapshot_production(session, cfg.data_dir, args.by,
                                            image_store=images.location(cfg))
            elif args.command == "reference":
                entry = build_reference(session, cfg.data_dir, args.initial, args.production,
                                        args.by)
            else:
                for kind in ("production", "reference"):
                    for v in versions(session, kind):
                        print(f"{kind} v{v['version']}\t{v['created_utc']}\t{v['by']}\t"
                              f"{v['images']} images")
                return 0
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
