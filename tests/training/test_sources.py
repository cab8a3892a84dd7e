"""training/sources.py: the evaluated sources, the train-only ones, and catalogue sources."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import helpers
from training.data import list_samples, load
from training.sources import (
    EXTRA,
    SOURCES,
    CatalogueSource,
    jsrt_normals,
    missing,
    source_paths,
    training_sources,
)


def _catalogue(tmp_path: Path) -> CatalogueSource:
    """A set laid out its own way: ``<split>/images/*.png`` and a metadata.csv."""
    folder = tmp_path / "set"
    rows = [("train/images/a.png", "pa", "no"), ("train/images/b.png", "pb", "yes"),
            ("val/images/c.png", "pc", "no"), ("val/images/d.png", "", "no")]
    rng = np.random.default_rng(0)
    for file, _, _ in rows:
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (64, 64), np.uint8)).save(folder / file)
    with (folder / "metadata.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "patient_id", "nodule"])
        w.writerows(rows)
    return CatalogueSource("set-normal", folder, "Normal", "nodule", "no")


def test_training_adds_the_named_train_only_sources_after_the_evaluated_ones(tmp_path):
    root = tmp_path / "data"
    assert [p.name for p in source_paths(root)] == list(SOURCES)
    assert training_sources(root) == source_paths(root)  # none unless named
    got = training_sources(root, list(EXTRA))
    assert got[: len(SOURCES)] == source_paths(root)
    assert [s.name for s in got[len(SOURCES):]] == list(EXTRA)
    assert jsrt_normals(root).folder == tmp_path / "lung-masks" / "jsrt-scr"


def test_a_catalogue_source_is_missing_until_its_metadata_exists(tmp_path):
    src = _catalogue(tmp_path)
    assert missing([src]) == []
    (src.folder / "metadata.csv").unlink()
    assert missing([src, tmp_path]) == [str(src.folder)]


def test_a_catalogue_source_picks_its_rows_as_train_images_of_one_class(tmp_path):
    src = _catalogue(tmp_path)
    train = list_samples([src], "train")
    # every split of the set is train here; the row with nodule=yes is not
    assert [s.path.name for s in train] == ["a.png", "c.png", "d.png"]
    assert {(s.source, s.split, s.label) for s in train} == {("set-normal", "train", "Normal")}
    assert [s.patient for s in train] == ["pa", "pc", "d"]  # no patient id: its own patient
    assert list_samples([src], "val") == []  # never part of the val figures


def test_a_catalogue_source_merges_with_folder_sources(tmp_path, toy_sources):
    src = _catalogue(tmp_path)
    ds = load([*toy_sources, src], "train")
    assert int((ds.sources == "set-normal").sum()) == 3
    assert set(ds.y[ds.sources == "set-normal"]) == {ds.classes.index("Normal")}
    val = load([*toy_sources, src], "val", classes=ds.classes)
    assert "set-normal" not in set(val.sources.tolist())


def test_the_real_jsrt_normals_are_the_films_without_a_nodule():
    src = jsrt_normals(helpers.SHARED_DATA)
    if missing([src]):
        pytest.skip(f"JSRT films not available here ({src.folder} missing)")
    with (src.folder / "metadata.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked = list_samples([src], "train")
    without = {src.folder / r["file"] for r in rows if r["nodule"] == "no"}
    assert picked and {s.path for s in picked} == without
    assert all(p.is_file() for p in without)
    assert not {s.path for s in picked} & {src.folder / r["file"] for r in rows
                                           if r["nodule"] != "no"}
