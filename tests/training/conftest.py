"""Fixtures for the training tests: small on-disk sources built from generated images."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, seed: int, bright: bool) -> None:
    """A 64x64 greyscale PNG: bright-centred or dark-centred noise."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 80, (64, 64)).astype(np.uint8)
    if bright:
        arr[16:48, 16:48] += 150
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture
def toy_sources(tmp_path) -> list[Path]:
    """Two sources: 'alpha' (Covid, Normal; NIH-style names) and 'beta' (Covid + metadata.csv)."""
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    for split, n in (("train", 6), ("val", 2)):
        for i in range(n):
            write_image(alpha / split / "Covid" / f"{10000000 + i // 2:08d}_{i:03d}.png", i, True)
            write_image(
                alpha / split / "Normal" / f"{20000000 + i // 2:08d}_{i:03d}.png", 50 + i, False
            )
            write_image(beta / split / "Covid" / f"b{i}.png", 100 + i, True)
    with (beta / "metadata.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "patient_id"])
        for split, n in (("train", 6), ("val", 2)):
            for i in range(n):
                w.writerow([f"{split}/Covid/b{i}.png", f"p{i // 3}"])
    return [alpha, beta]
