"""Small synthetic datasets on disk for the lifecycle tests (no test logic here)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, seed: int, label: str) -> bytes:
    """A 64x64 greyscale PNG whose pattern depends on the class; its bytes."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 80, (64, 64)).astype(np.uint8)
    if label == "COVID":
        arr[16:48, 16:48] += 150
    elif label == "Viral Pneumonia":
        arr[:, 32:] += 100
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path.read_bytes()


def reference(root: Path, n_train: int = 16, n_val: int = 4) -> Path:
    """Two public-like sources with the three classes: ``root/<source>/<split>/<class>``."""
    for s, source in enumerate(("alpha", "beta")):
        for split, n in (("train", n_train), ("val", n_val)):
            for c, label in enumerate(("COVID", "Normal", "Viral Pneumonia")):
                for i in range(n):
                    seed = 10000 * s + 1000 * c + 100 * (split == "val") + i
                    write_image(root / source / split / label / f"{source}{c}{split}{i}.png",
                                seed, label)
    return root


def production_version(folder: Path, n: int = 30, source: str = "St Elsewhere") -> Path:
    """A production dataset version as app.datasets.service writes it (folders, manifest)."""
    rows = []
    for i in range(n):
        label = ("COVID", "Normal")[i % 2]
        tmp = folder / "tmp.png"
        data = write_image(tmp, 50000 + i, label)
        sha = hashlib.sha256(data).hexdigest()
        dest = folder / label / f"{sha}.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(dest)
        rows.append({"file": f"{label}/{sha}.png", "sha256": sha, "label": label,
                     "source": source, "site": source, "validated_by": "rad",
                     "prediction_id": str(i)})
    with (folder / "manifest.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return folder
