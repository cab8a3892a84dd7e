"""Migration 0010 on SQLite and a real PostgreSQL: contributions typed by a CHECKed column
backfilled from rows made before it; dataset versions recorded in the database, the JSONL
version logs of earlier versions imported once."""

from __future__ import annotations

import hashlib
import json

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from app.store import db
from app.store.db.models import DatasetVersion, Prediction

BEFORE = "0008"  # before 0009 (review state) and 0010: rows made by the code of then


def _old_rows(url: str) -> None:
    """A radiologist, an analysed upload, a contribution (with its label review), as a
    database at ``BEFORE`` holds them."""
    with db.get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO users (id, username, role, active, must_change_password,"
                          " session_nonce, created_at) VALUES (1, 'rad', 'radiologist', true, "
                          "false, 'n', CURRENT_TIMESTAMP)"))
        for pid, status in (("p-ok", "ok"), ("p-contrib", "contributed"), ("p-err", "error")):
            conn.execute(text("INSERT INTO predictions (id, created_at, site, image_sha256, "
                              "image_format, image_bytes, status, needs_review) VALUES "
                              f"('{pid}', CURRENT_TIMESTAMP, '', 'h', 'PNG', 1, '{status}', "
                              "false)"))
        conn.execute(text("INSERT INTO reviews (prediction_id, reviewer_id, verdict, label, "
                          "comment, created_at) VALUES ('p-contrib', 1, 'corrected', 'COVID', "
                          "'', CURRENT_TIMESTAMP)"))


def _old_logs(data_dir):
    """The version logs (and one manifest) an earlier Radio wrote."""
    prod = data_dir / "datasets" / "production"
    (prod / "v1").mkdir(parents=True)
    (prod / "v1" / "manifest.csv").write_text(
        "file,sha256,label,source,site,validated_by,prediction_id\n"
        f"COVID/{'b' * 64}.png,{'b' * 64},COVID,Site B,Site B,rad,p2\n"
        f"Normal/{'a' * 64}.png,{'a' * 64},Normal,Site B,Site B,rad,p1\n")
    v1 = {"version": 1, "created_utc": "2026-11-30T10:00:00+00:00", "by": "boss", "images": 2,
          "per_class": {"COVID": 1, "Normal": 1},
          "per_source": {"Site B / COVID": 1, "Site B / Normal": 1}}
    v2 = {"version": 2, "created_utc": "2026-12-01T10:00:00+00:00", "by": "boss", "images": 1,
          "per_class": {"Normal": 1}, "per_source": {"Site B / Normal": 1},
          "missing_images": 1}
    # v1 twice (a log appended by two processes) and a torn last line: one row each, no error.
    (prod / "versions.jsonl").write_text(
        "\n".join([json.dumps(v1), json.dumps(v1), json.dumps(v2), '{"version": 3, "by']))
    ref = data_dir / "datasets" / "reference"
    ref.mkdir(parents=True)
    (ref / "versions.jsonl").write_text(json.dumps(
        {"version": 1, "created_utc": "2026-12-02T10:00:00+00:00", "by": "ops",
         "initial": ["/data/nih"], "production": [1, 2], "images": 5,
         "per_class": {"Normal": 5}, "per_source": {"nih / Normal": 5}}) + "\n")


def test_upgrade_backfills_kinds_and_imports_the_version_logs(db_url, tmp_path):
    data_dir = tmp_path / "data"
    _old_logs(data_dir)
    db.migrate(db_url, BEFORE)
    _old_rows(db_url)
    db.dispose_all()
    db.migrate(db_url, data_dir=data_dir)
    with db.session_scope(db_url) as s:
        kinds = dict(s.execute(select(Prediction.id, Prediction.kind)).all())
        versions = {(v.kind, v.version): v for v in s.scalars(select(DatasetVersion))}
    assert kinds == {"p-ok": "analysis", "p-contrib": "contribution", "p-err": "analysis"}
    assert sorted(versions) == [("production", 1), ("production", 2), ("reference", 1)]
    v1 = versions[("production", 1)]
    assert (v1.created_by, v1.images, v1.artefact) == ("boss", 2, "datasets/production/v1")
    assert v1.per_class == {"COVID": 1, "Normal": 1} and v1.detail is None
    assert (v1.created_at.year, v1.created_at.month, v1.created_at.day) == (2026, 11, 30)
    # The hash of its manifest's (image, label) pairs, sorted, written out by hand.
    pairs = f"{'a' * 64}\tNormal\n{'b' * 64}\tCOVID"
    assert v1.content_sha256 == hashlib.sha256(pairs.encode()).hexdigest()
    assert versions[("production", 2)].detail == {"missing_images": 1}
    assert versions[("reference", 1)].detail == {"initial": ["/data/nih"], "production": [1, 2]}
    # The logs stay where they were (the artefacts' history), unchanged.
    assert (data_dir / "datasets" / "reference" / "versions.jsonl").is_file()


def test_the_database_refuses_an_unknown_kind(db_url, tmp_path):
    db.migrate(db_url, data_dir=tmp_path)
    engine = db.get_engine(db_url)
    insert = ("INSERT INTO predictions (id, created_at, site, image_sha256, image_format, "
              "image_bytes, status, needs_review, kind) VALUES ('{id}', CURRENT_TIMESTAMP, '', "
              "'h', 'PNG', 1, 'ok', false, '{kind}')")
    with engine.begin() as conn:
        conn.execute(text(insert.format(id="a", kind="contribution")))
        conn.execute(text("INSERT INTO predictions (id, created_at, site, image_sha256, "
                          "image_format, image_bytes, status, needs_review) VALUES "
                          "('b', CURRENT_TIMESTAMP, '', 'h', 'PNG', 1, 'ok', false)"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(insert.format(id="c", kind="upload")))
    with engine.begin() as conn:  # no kind given: an analysis, the database's default
        assert dict(conn.execute(text("SELECT id, kind FROM predictions")).all()) == {
            "a": "contribution", "b": "analysis"}
    version = ("INSERT INTO dataset_versions (kind, version, created_at, created_by, "
               "content_sha256, images, per_class, per_source, artefact) VALUES ('{kind}', 1, "
               "CURRENT_TIMESTAMP, 'x', 'h', 0, '{{}}', '{{}}', 'p')")
    with engine.begin() as conn:
        conn.execute(text(version.format(kind="production")))
    for kind in ("production", "staging"):  # a second production v1; an unknown kind
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(version.format(kind=kind)))
    db.dispose_all()


def test_downgrade_keeps_the_predictions(db_url, tmp_path):
    db.migrate(db_url, BEFORE)
    _old_rows(db_url)
    db.dispose_all()
    db.migrate(db_url, data_dir=tmp_path)
    db.dispose_all()
    command.downgrade(db.alembic_config(db_url), BEFORE)
    with db.get_engine(db_url).begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM predictions")).scalar() == 3
        assert conn.execute(text("SELECT count(*) FROM reviews")).scalar() == 1
    db.dispose_all()
