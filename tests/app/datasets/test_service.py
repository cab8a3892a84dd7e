"""app/datasets/service.py: production snapshots of validated images, reference versions, CLI."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys

import dicom_files
import helpers
import pytest
from sqlalchemy import select

from app.accounts import users
from app.clinical import reviews
from app.datasets import service, version_log
from app.intake import dicom
from app.store import db, images
from app.store.db.models import AuditEntry, DatasetVersion, Prediction
from training.data import list_samples


@pytest.fixture()
def pool(db_url, tmp_path):
    """Five images: agreed, corrected, disputed, unknown, and a DICOM from an institution."""
    db.migrate(db_url)
    data_dir = tmp_path / "data"
    with db.session_scope(db_url) as s:
        r1 = users.create_user(s, "r1", "radiologist")
        r2 = users.create_user(s, "r2", "radiologist")
        preds = {}
        for i, name in enumerate(("agreed", "corrected", "disputed", "unknown")):
            png = helpers.synthetic_image("PNG", (64 + i, 64))
            sha = images.store(data_dir / "images", png, "PNG")
            preds[name] = Prediction(id=f"{i}" * 32, image_sha256=sha, image_format="PNG",
                                     image_bytes=len(png), status="ok", label="Normal",
                                     probabilities={"COVID": 0.4, "Normal": 0.6},
                                     site="Site A")
        clean, _, source, _png = dicom.load(dicom_files.make(dicom_files.radiograph()))
        sha = images.store(data_dir / "images", clean, "DICOM")
        preds["dicom"] = Prediction(id="d" * 32, image_sha256=sha, image_format="DICOM",
                                    image_bytes=len(clean), status="ok", label="COVID",
                                    probabilities={"COVID": 0.6, "Normal": 0.4},
                                    source=source, site="Site A")
        s.add_all(preds.values())
        s.flush()
        reviews.add(s, preds["agreed"], r1, "validated", None, "")
        reviews.add(s, preds["agreed"], r2, "validated", None, "")
        reviews.add(s, preds["corrected"], r1, "corrected", "COVID", "")
        reviews.add(s, preds["disputed"], r1, "validated", None, "")
        reviews.add(s, preds["disputed"], r2, "corrected", "COVID", "")
        reviews.add(s, preds["unknown"], r1, "unknown", None, "")
        reviews.add(s, preds["dicom"], r2, "validated", None, "")
    return db_url, data_dir, preds


def _manifest(folder):
    with open(folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_snapshot_holds_agreed_images_only_with_source_and_label(pool):
    db_url, data_dir, preds = pool
    with db.session_scope(db_url) as s:
        entry = service.snapshot_production(s, data_dir, "r1")
    assert entry["version"] == 1 and entry["images"] == 3
    assert entry["per_class"] == {"COVID": 2, "Normal": 1}
    folder = data_dir / "datasets" / "production" / "v1"
    rows = {r["prediction_id"]: r for r in _manifest(folder)}
    assert set(rows) == {preds[k].id for k in ("agreed", "corrected", "dicom")}
    assert rows[preds["agreed"].id]["validated_by"] == "r1 r2"
    assert rows[preds["corrected"].id]["label"] == "COVID"
    assert rows[preds["dicom"].id]["source"] == "St Example Hospital"
    assert rows[preds["agreed"].id]["source"] == "Site A"
    for row in rows.values():
        path = folder / row["file"]
        assert path.parent.name == row["label"] and path.suffix == ".png"
    # The stored DICOM is exported as the PNG the model reads; the PNGs byte for byte.
    agreed = rows[preds["agreed"].id]
    assert (folder / agreed["file"]).read_bytes() == images.load(
        data_dir / "images", agreed["sha256"], "PNG")
    assert (folder / rows[preds["dicom"].id]["file"]).read_bytes().startswith(b"\x89PNG")
    with db.session_scope(db_url) as s:
        assert service.snapshot_production(s, data_dir, "r1")["version"] == 2
        audit = list(s.scalars(select(AuditEntry.target)
                               .where(AuditEntry.action == "dataset_snapshot")))
        assert [v["version"] for v in service.versions(s, "production")] == [1, 2]
    assert audit == ["production/v1", "production/v2"]


def test_the_same_image_with_doubt_anywhere_stays_out(pool):
    db_url, data_dir, preds = pool
    with db.session_scope(db_url) as s:
        again = Prediction(id="e" * 32, image_sha256=preds["agreed"].image_sha256,
                           image_format="PNG", image_bytes=1, status="ok", label="Normal",
                           probabilities={"COVID": 0.4, "Normal": 0.6})
        s.add(again)
        s.flush()
        reviews.add(s, again, users.find(s, "r1"), "unknown", None, "")
        s.flush()
        shas = {r["sha256"] for r in service.validated(s)}
    assert preds["agreed"].image_sha256 not in shas and len(shas) == 2


def test_reference_keeps_sources_apart_and_training_reads_it(pool, tmp_path):
    db_url, data_dir, _ = pool
    initial = tmp_path / "public" / "pub-src"
    for split in ("train", "val"):
        (initial / split / "Normal").mkdir(parents=True)
        (initial / split / "Normal" / f"{split}.png").write_bytes(helpers.synthetic_image())
    with db.session_scope(db_url) as s:
        service.snapshot_production(s, data_dir, "r1")
        service.snapshot_production(s, data_dir, "r1")
    with db.session_scope(db_url) as s:
        entry = service.build_reference(s, data_dir, [initial], [1, 2], "admin")
    folder = data_dir / "datasets" / "reference" / f"v{entry['version']}"
    rows = _manifest(folder)
    sources = {r["source"] for r in rows}
    assert sources == {"pub-src", "production-site-a", "production-st-example-hospital"}
    assert len(rows) == 2 + 3  # the second snapshot repeats the first: no duplicates
    dirs = sorted(p for p in folder.iterdir() if p.is_dir())
    samples = list_samples(dirs, "train") + list_samples(dirs, "val")
    assert {(s.source, s.label) for s in samples} >= {("pub-src", "Normal"),
                                                      ("production-site-a", "COVID")}
    assert len(samples) == 5
    with pytest.raises(service.DatasetError, match="No production version"), \
            db.session_scope(db_url) as s:
        service.build_reference(s, data_dir, [initial], [9], "admin")


def test_cli_snapshot_reference_and_list(pool, tmp_path):
    db_url, data_dir, _ = pool
    env = helpers.server_env(PYTHONPATH=str(helpers.ROOT), RADIO_DATA_DIR=str(data_dir),
                             DATABASE_URL=db_url)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "app.datasets.service", *args], env=env,
                              capture_output=True, text=True, cwd=helpers.ROOT)

    out = run("snapshot", "--by", "ops")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["images"] == 3
    out = run("reference", "--production", "1")
    assert out.returncode == 0, out.stderr
    listing = run("list").stdout
    assert "production v1" in listing and "reference v1" in listing
    assert run("reference", "--production", "5").returncode == 2


def test_each_version_is_recorded_in_the_database(pool):
    db_url, data_dir, preds = pool
    with db.session_scope(db_url) as s:
        service.snapshot_production(s, data_dir, "r1")
    with db.session_scope(db_url) as s:
        (row,) = s.scalars(select(DatasetVersion)).all()
        assert version_log.find(s, "production", 1).id == row.id
    assert (row.kind, row.version, row.created_by, row.images) == ("production", 1, "r1", 3)
    assert row.per_class == {"COVID": 2, "Normal": 1} and row.detail is None
    assert row.artefact == "datasets/production/v1"
    pairs = sorted(f"{preds[k].image_sha256}\t{label}" for k, label in (
        ("agreed", "Normal"), ("corrected", "COVID"), ("dicom", "COVID")))
    assert row.content_sha256 == hashlib.sha256("\n".join(pairs).encode()).hexdigest()
    # The database is the log now: no JSONL written beside the versions.
    assert not (data_dir / "datasets" / "production" / "versions.jsonl").exists()


def test_a_folder_without_its_row_is_never_overwritten(pool):
    """A version folder whose commit failed (or one of a log never imported) keeps its
    number: the next version takes the one after it."""
    db_url, data_dir, _ = pool
    stray = data_dir / "datasets" / "production" / "v1"
    stray.mkdir(parents=True)
    (stray / "manifest.csv").write_text("file,sha256,label\n")
    with db.session_scope(db_url) as s:
        assert service.snapshot_production(s, data_dir, "r1")["version"] == 2
    assert (stray / "manifest.csv").read_text() == "file,sha256,label\n"


def test_a_version_imported_from_its_old_log_is_recognised_as_the_latest(pool):
    """Migration 0010 hashes an old version's manifest as the service hashes a snapshot:
    a snapshot identical to an imported version is recognised (the 409 of the pages)."""
    from alembic import command

    from app.datasets import dataset_versions

    db_url, data_dir, _ = pool
    with db.session_scope(db_url) as s:
        entry = service.snapshot_production(s, data_dir, "r1")
    log = {k: entry[k] for k in ("version", "created_utc", "by", "images", "per_class",
                                 "per_source")}
    (data_dir / "datasets" / "production" / "versions.jsonl").write_text(json.dumps(log) + "\n")
    db.dispose_all()
    command.downgrade(db.alembic_config(db_url), "0008")  # a database from before 0010
    db.migrate(db_url, data_dir=data_dir)
    with db.session_scope(db_url) as s:
        assert [v["by"] for v in service.versions(s, "production")] == ["r1"]
        assert dataset_versions.same_as_latest(s) == 1


def test_a_twin_of_a_recorded_version_is_refused_before_its_folder_moves(pool, monkeypatch):
    """Two snapshots that both counted up to the same number (a race): the database's
    UNIQUE (kind, version) refuses the second before its folder replaces anything."""
    db_url, data_dir, _ = pool
    with db.session_scope(db_url) as s:
        service.snapshot_production(s, data_dir, "r1")
    folder = data_dir / "datasets" / "production"
    manifest = (folder / "v1" / "manifest.csv").read_bytes()
    monkeypatch.setattr(version_log, "next_version", lambda *_: 1)  # counted before v1
    with db.session_scope(db_url) as s:
        with pytest.raises(service.DatasetError,
                           match="Production version 1 was made by another request"):
            service.snapshot_production(s, data_dir, "r2")
        assert [v["by"] for v in service.versions(s, "production")] == ["r1"]
    assert (folder / "v1" / "manifest.csv").read_bytes() == manifest
    assert sorted(p.name for p in folder.iterdir()) == ["v1"]  # no temporary folder left
