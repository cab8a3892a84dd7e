"""training/sampling.py: balancing by class and source, metadata CSV, patient folds."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np

from training.data import load
from training.sampling import balanced_weights, downsample, patient_folds, write_metadata


def test_weights_balance_classes_and_sources(toy_sources):
    ds = load(toy_sources, "train")
    ds = ds.subset(np.arange(len(ds.samples))[:-3])  # beta/COVID now has 3 images, alpha 6
    w = balanced_weights(ds)
    assert np.isclose(w.mean(), 1.0)
    total = Counter()
    for s, wi in zip(ds.samples, w, strict=True):
        total[(s.label, s.source)] += wi
    assert np.isclose(total[("COVID", "alpha")], total[("COVID", "beta")])
    assert np.isclose(
        total[("COVID", "alpha")] + total[("COVID", "beta")], total[("Normal", "alpha")]
    )


def test_downsample_cuts_to_minority_and_writes_exact_list(toy_sources, tmp_path):
    ds = load(toy_sources, "train")
    keep = downsample(ds, seed=0)
    sub = ds.subset(keep)
    counts = Counter(s.label for s in sub.samples)
    assert counts == {"COVID": 6, "Normal": 6}
    assert Counter(s.source for s in sub.samples if s.label == "COVID") == {"alpha": 3, "beta": 3}
    path = write_metadata(tmp_path / "meta.csv", sub, np.ones(len(keep)))
    rows = list(csv.DictReader(path.open()))
    assert sorted(r["file"] for r in rows) == sorted(s.relpath for s in sub.samples)
    assert list(downsample(ds, seed=0)) == list(keep)


def test_folds_never_split_a_patient(toy_sources):
    ds = load(toy_sources, "train")
    folds = patient_folds(ds, k=3, seed=1)
    seen = np.zeros(len(ds.samples), int)
    for train, held in folds:
        assert not set(ds.groups[train]) & set(ds.groups[held])
        seen[held] += 1
    assert (seen == 1).all()
