"""lifecycle/heldout.py: the gate's held-out images (val splits + val side of production)."""

from __future__ import annotations

from collections import Counter

import pytest
from datasets_helpers import production_version, reference

from app.datasets.service import production_split
from lifecycle import heldout


def test_val_splits_and_the_val_side_of_a_production_version(tmp_path):
    ref = reference(tmp_path / "ref", n_train=1, n_val=2)
    prod = production_version(tmp_path / "prod", n=40)
    data = heldout.load([ref / "alpha", ref / "beta"], prod)
    counts = Counter(data.sources)
    assert counts["alpha"] == counts["beta"] == 6
    expected_val = sum(production_split(p.stem) == "val" for p in prod.rglob("*.png"))
    assert 0 < expected_val < 40  # both sides exist, only val is held out
    assert counts["production-st-elsewhere"] == expected_val
    assert data.images.shape == (12 + expected_val, 224, 224) and not data.skipped
    assert set(data.labels) == {"COVID", "Normal", "Viral Pneumonia"}


def test_an_unreadable_image_is_listed_not_hidden(tmp_path):
    ref = reference(tmp_path / "ref", n_train=1, n_val=1)
    (ref / "alpha" / "val" / "Normal" / "broken.png").write_bytes(b"not a png")
    data = heldout.load([ref / "alpha"])
    assert len(data.labels) == 3 and len(data.skipped) == 1 and "broken.png" in data.skipped[0]


def test_a_folder_that_is_not_a_production_version_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a production dataset version"):
        heldout.load([], tmp_path)
