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
* ``<kind>/versions.jsonl``: the version log (who, when, what, counts).

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
from sqlalchemy.orm import Session, selectinload

from app.accounts import audit
from app.clinical import reviews
from app.store import images
from app.store.db.models import Prediction, Review, utcnow

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
    preds = session.scalars(
        select(Prediction).options(selectinload(Prediction.reviews).selectinload(Review.reviewer))
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


def versions(data_dir: Path, kind: str) -> list[dict[str, Any]]:
    """The version log of ``kind`` (production or reference), oldest first."""
    log = root(data_dir) / kind / "versions.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _next_version(data_dir: Path, kind: str) -> int:
    return max((v["version"] for v in versions(data_dir, kind)), default=0) + 1


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
    (folder / "manifest.csv").write_text(buf.getvalue())


def _publish(data_dir: Path, kind: str, tmp: Path, entry: dict[str, Any]) -> Path:
    """Rename the finished folder into place, then append to the version log."""
    final = tmp.with_name(f"v{entry['version']}")
    os.replace(tmp, final)
    with open(root(data_dir) / kind / "versions.jsonl", "a") as log:
        log.write(json.dumps(entry) + "\n")
        log.flush()
        os.fsync(log.fileno())
    return final


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
    version = _next_version(data_dir, "production")
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
        (tmp / row["label"]).mkdir(parents=True, exist_ok=True)
        (tmp / row["file"]).write_bytes(data)
        kept.append(row)
    if not kept:
        raise DatasetError(f"None of the {len(rows)} validated images is still stored "
                           "(the retention period removed them): nothing to snapshot.")
    rows = kept
    _write_manifest(tmp, rows)
    entry = {"version": version, "created_utc": utcnow().isoformat(timespec="seconds"),
             "by": by, **counts(rows), **({"missing_images": missing} if missing else {})}
    _publish(data_dir, "production", tmp, entry)
    audit.log(session, "dataset_snapshot", user_id=user_id, target=f"production/v{version}",
              detail={"images": len(rows)})
    return entry


def _read_manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # no copy when on the same file system
    except OSError:
        shutil.copy2(src, dst)


def build_reference(data_dir: Path, initial: Sequence[Path], production: Sequence[int],
                    by: str) -> dict[str, Any]:
    """A reference version: the ``initial`` source folders + the chosen production versions."""
    known = {v["version"] for v in versions(data_dir, "production")}
    unknown = sorted(set(production) - known)
    if unknown:
        raise DatasetError(f"No production version {unknown}; known: {sorted(known)}.")
    for folder in initial:
        if not Path(folder).is_dir():
            raise DatasetError(f"The initial source {folder} does not exist.")
    version = _next_version(data_dir, "reference")
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
    entry = {"version": version, "created_utc": utcnow().isoformat(timespec="seconds"),
             "by": by, "initial": [str(Path(p).resolve()) for p in initial],
             "production": sorted(production), **counts(rows)}
    _publish(data_dir, "reference", tmp, entry)
    return entry


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
    try:
        if args.command == "snapshot":
            db.migrate(cfg.db_url, data_dir=cfg.data_dir)
            with db.session_scope(cfg.db_url) as session:
                entry = snapshot_production(session, cfg.data_dir, args.by,
                                            image_store=images.location(cfg))
        elif args.command == "reference":
            entry = build_reference(cfg.data_dir, args.initial, args.production, args.by)
        else:
            for kind in ("production", "reference"):
                for v in versions(cfg.data_dir, kind):
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
