"""training/prepare.py, the data stage: limits, balance, folds, version, skipped files."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from training import data
from training.prepare import fold_index, limit_per_group, prepare

SIZE = 32


def stage(sources, limit=None, balance="weights", folds=2, seed=0):
    return prepare(sources, SIZE, limit, balance, folds, seed)


def test_splits_are_loaded_at_the_run_size_with_the_train_classes(toy_sources):
    d = stage(toy_sources)
    assert d.classes == d.val.classes == ["COVID", "Normal"]
    assert d.train.images.shape == (18, SIZE, SIZE) and d.val.images.shape == (6, SIZE, SIZE)


def test_limit_keeps_the_first_images_of_each_source_and_class(toy_sources):
    d = stage(toy_sources, limit=2)
    assert data.describe(d.train) == {"alpha/COVID": 2, "alpha/Normal": 2, "beta/COVID": 2}
    assert [s.path.name for s in d.train.samples if s.source == "beta"] == ["b0.png", "b1.png"]
    assert len(d.val.samples) == 6  # val has 2 of each already
    full = data.load(toy_sources, "train", size=SIZE)
    assert limit_per_group(full, None) is full


def test_weights_balance_classes_and_sources(toy_sources):
    d = stage(toy_sources)
    assert d.weights.mean() == pytest.approx(1.0)
    per_class = {c: d.weights[d.train.y == i].sum() for i, c in enumerate(d.classes)}
    assert per_class["COVID"] == pytest.approx(per_class["Normal"])
    covid = d.train.y == 0
    alpha, beta = covid & (d.train.sources == "alpha"), covid & (d.train.sources == "beta")
    assert d.weights[alpha].sum() == pytest.approx(d.weights[beta].sum())


def test_downsample_cuts_every_class_to_the_minority_with_unit_weights(toy_sources):
    d = stage(toy_sources, balance="downsample")
    assert Counter(s.label for s in d.train.samples) == {"COVID": 6, "Normal": 6}
    covid_sources = Counter(s.source for s in d.train.samples if s.label == "COVID")
    assert covid_sources == {"alpha": 3, "beta": 3}  # no source dropped from a class
    assert np.array_equal(d.weights, np.ones(12, np.float32))
    assert len(d.fold_of) == 12 and max(te.max() for _, te in d.folds) < 12


def test_folds_partition_train_without_splitting_a_patient(toy_sources):
    d = stage(toy_sources, folds=3)
    assert len(d.folds) == 3
    for f, (tr, te) in enumerate(d.folds):
        assert np.all(d.fold_of[te] == f)
        assert not set(d.train.groups[tr]) & set(d.train.groups[te])
    assert sorted(np.concatenate([te for _, te in d.folds])) == list(range(18))


def test_fold_index_names_the_held_out_fold():
    folds = [(np.array([1, 2]), np.array([0, 3])), (np.array([0, 3]), np.array([1, 2]))]
    assert fold_index(folds, 4).tolist() == [0, 1, 1, 0]


def test_same_options_same_run_and_the_version_follows_the_limit(toy_sources):
    a, b = stage(toy_sources, seed=5), stage(toy_sources, seed=5)
    assert a.version == b.version
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a.folds, b.folds, strict=True))
    assert stage(toy_sources, limit=2).version != a.version  # other images, other version


def test_unreadable_files_are_reported_even_with_a_limit(toy_sources):
    bad = toy_sources[0] / "val" / "Normal" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    for limit in (None, 2):
        d = stage(toy_sources, limit=limit)
        assert [p.name for p, _ in d.skipped] == ["broken.png"], limit
