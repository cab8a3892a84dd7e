"""training/data.py: discovery, class mapping, merging, patients, unreadable files."""

from __future__ import annotations

import numpy as np

from training.data import class_label, dataset_version, describe, load


def test_class_folders_get_readable_labels():
    assert class_label("Covid") == "COVID"
    assert class_label("viral pneumonia") == "Viral Pneumonia"
    assert class_label("Normal") == "Normal"
    assert class_label("Tuberculosis") == "Tuberculosis"


def test_sources_merge_by_class(toy_sources):
    ds = load(toy_sources, "train")
    assert ds.classes == ["COVID", "Normal"]
    assert describe(ds) == {"alpha/COVID": 6, "alpha/Normal": 6, "beta/COVID": 6}
    assert ds.images.shape == (18, 224, 224) and ds.images.dtype == np.uint8
    assert set(ds.y[ds.sources == "beta"]) == {0}


def test_patients_from_names_and_metadata(toy_sources):
    ds = load(toy_sources, "train")
    patients = {(s.source, s.path.name): s.patient for s in ds.samples}
    assert patients[("alpha", "10000000_001.png")] == "10000000"
    assert patients[("beta", "b4.png")] == "p1"


def test_unreadable_file_is_reported_and_skipped(toy_sources):
    bad = toy_sources[0] / "train" / "Covid" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    ds = load(toy_sources, "train")
    assert len(ds.samples) == 18
    assert [p.name for p, _ in ds.skipped] == ["broken.png"]


def test_val_keeps_the_train_classes(toy_sources):
    ds = load(toy_sources, "val", classes=["COVID", "Normal", "Viral Pneumonia"])
    assert ds.classes == ["COVID", "Normal", "Viral Pneumonia"]


def test_dataset_version_follows_content(toy_sources):
    ds = load(toy_sources, "train")
    v1 = dataset_version([ds])
    assert v1 == dataset_version([load(toy_sources, "train")])
    (toy_sources[1] / "train" / "Covid" / "b0.png").write_bytes(
        (toy_sources[1] / "train" / "Covid" / "b1.png").read_bytes()
    )
    assert dataset_version([load(toy_sources, "train")]) != v1
