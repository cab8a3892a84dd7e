"""The dataset versions for admins: one version's contents (images per source and class,
its manifest), its manifest as CSV, a production version as a zip of its images, and the
check that keeps a snapshot identical to the latest version from being made.

The versions themselves are :mod:`app.datasets.service`'s (folders under
``<data dir>/datasets`` with a ``manifest.csv``, recorded in the database by
:mod:`app.datasets.version_log`). A reference version links the public sources rather than
copying them (gigabytes): it downloads as its manifest only.
"""

from __future__ import annotations

import csv
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, render_template, send_file
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from app.accounts.auth import requires
from app.datasets import service as datasets
from app.datasets import version_log
from app.store.db import web as dbweb

bp = Blueprint("dataset_versions", __name__)
KINDS = ("production", "reference")
SHOWN_ROWS = 200  # manifest rows shown on the page; the CSV has them all


def _folder(session: Session, data_dir: Path, kind: str,
            number: int) -> tuple[dict[str, Any], Path]:
    """The record and folder of ``kind`` version ``number``; 404 when there is none."""
    if kind not in KINDS:
        abort(404)
    row = version_log.find(session, kind, number)
    if row is None:
        abort(404)
    folder = Path(data_dir) / row.artefact
    if not (folder / "manifest.csv").is_file():
        abort(404)
    return version_log.entry(row), folder


def manifest(folder: Path) -> list[dict[str, str]]:
    """A version's manifest rows."""
    with open(folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def table(rows: list[dict[str, str]]) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """(classes, [(source, images per class)]) of manifest rows, sorted."""
    classes = sorted({r["label"] for r in rows})
    per = Counter((r["source"], r["label"]) for r in rows)
    sources = sorted({r["source"] for r in rows})
    return classes, [(s, [per[(s, c)] for c in classes]) for s in sources]


def same_as_latest(session: Session) -> int | None:
    """The latest production version if a snapshot now would hold exactly its images with
    the same labels (so making it would only repeat it), else None: the content hashes
    compared. A latest version that lost images to the retention period differs, and a new
    one is made."""
    latest = version_log.latest(session, "production")
    if latest is None:
        return None
    now = version_log.content_sha256(datasets.validated(session))
    return latest.version if now == latest.content_sha256 else None


@bp.get("/datasets/<kind>/v<int:number>")
@requires("admin")
def show(kind: str, number: int) -> ResponseReturnValue:
    """One version: who made it and when, images per source and class, its files."""
    entry, folder = _folder(dbweb.session(), current_app.config["RADIO"].data_dir,
                            kind, number)
    rows = manifest(folder)
    classes, per_source = table(rows)
    return render_template("dataset_version.html", kind=kind, entry=entry, rows=rows,
                           shown=rows[:SHOWN_ROWS], classes=classes, per_source=per_source,
                           totals=[sum(n[i] for _, n in per_source)
                                   for i in range(len(classes))])


@bp.get("/datasets/<kind>/v<int:number>/manifest.csv")
@requires("admin")
def manifest_csv(kind: str, number: int) -> ResponseReturnValue:
    """The version's manifest (file, sha256, label, source, site, validated_by, ...)."""
    _, folder = _folder(dbweb.session(), current_app.config["RADIO"].data_dir,
                            kind, number)
    return send_file(folder / "manifest.csv", mimetype="text/csv", as_attachment=True,
                     download_name=f"radio-{kind}-v{number}-manifest.csv")


@bp.get("/datasets/production/v<int:number>.zip")
@requires("admin")
def archive(number: int) -> ResponseReturnValue:
    """A production version as a zip: its manifest and its images, as in its folder."""
    _, folder = _folder(dbweb.session(), current_app.config["RADIO"].data_dir,
                            "production", number)
    base = folder.resolve()
    # Spooled to disk, not memory: a version may hold thousands of images.
    out = tempfile.TemporaryFile()  # noqa: SIM115 - send_file closes it
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:  # PNG/JPEG are compressed
        zf.write(folder / "manifest.csv", "manifest.csv")
        for row in manifest(folder):
            path = (folder / row["file"]).resolve()
            if not path.is_relative_to(base) or not path.is_file():
                continue  # the manifest is ours; a path leaving the folder is never sent
            zf.write(path, row["file"])
    out.seek(0)
    return send_file(out, mimetype="application/zip", as_attachment=True,
                     download_name=f"radio-production-v{number}.zip")
