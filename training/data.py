"""Finding, reading and describing the training images of one or more sources.

A source is a folder ``<source>/<split>/<class folder>/<image>``; sources merge by class
name. Patient ids come from ``<source>/metadata.csv`` (columns ``file``, ``patient_id``)
or from NIH-style file names (``00001280_004.png`` -> patient ``00001280``); images with
neither are their own patient. A :class:`training.sources.CatalogueSource` (films of
another data set picked by its metadata) is read the same way, as train images only.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from serving.preprocessing import IMAGE_SIZE, ImageError, preprocess_path
from training.sources import CatalogueSource, Source

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
# Folder names as published -> the labels Radio shows. Unknown names are kept as they are.
CLASS_ALIASES = {
    "covid": "COVID",
    "covid-19": "COVID",
    "covid19": "COVID",
    "normal": "Normal",
    "viral pneumonia": "Viral Pneumonia",
    "viral_pneumonia": "Viral Pneumonia",
    "other abnormal": "Other Abnormal",
    "other_abnormal": "Other Abnormal",
}
# The order of the model's outputs when these classes are present.
# "Other Abnormal" comes last so that a three-class model's outputs keep their indices.
PREFERRED_ORDER = ["COVID", "Normal", "Viral Pneumonia", "Other Abnormal"]
_NIH_PATIENT = re.compile(r"^(\d{8})_\d+")


def class_label(folder_name: str) -> str:
    """Readable label for a class folder (``Covid`` -> ``COVID``)."""
    return CLASS_ALIASES.get(folder_name.strip().lower(), folder_name.strip())


@dataclass(frozen=True)
class Sample:
    """One image file with everything known about it."""

    path: Path
    source: str
    split: str
    label: str
    patient: str

    @property
    def relpath(self) -> str:
        """Path inside the source folder, as written in metadata files."""
        return f"{self.split}/{self.path.parent.name}/{self.path.name}"


@dataclass
class Dataset:
    """Decoded images (uint8, model contract) with labels, sources and patients."""

    samples: list[Sample]
    images: np.ndarray
    classes: list[str]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def y(self) -> np.ndarray:
        """Class index of each image."""
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[s.label] for s in self.samples], dtype=np.int64)

    @property
    def sources(self) -> np.ndarray:
        """Source name of each image."""
        return np.array([s.source for s in self.samples])

    @property
    def groups(self) -> np.ndarray:
        """Patient key of each image, unique across sources."""
        return np.array([f"{s.source}:{s.patient}" for s in self.samples])

    def subset(self, idx: np.ndarray) -> Dataset:
        """The images at ``idx`` (same classes)."""
        idx = np.asarray(idx)
        return Dataset([self.samples[i] for i in idx], self.images[idx], self.classes)


def _patient_map(source_dir: Path) -> dict[str, str]:
    meta = source_dir / "metadata.csv"
    if not meta.is_file():
        return {}
    with meta.open(newline="") as fh:
        return {row["file"]: row["patient_id"] for row in csv.DictReader(fh) if row.get("file")}


def _catalogue_samples(source: CatalogueSource, split: str) -> list[Sample]:
    """The rows of the set's metadata that ``source`` picks, as train samples (no val)."""
    if split != "train":
        return []
    with (source.folder / "metadata.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get(source.column) == source.value]
    return sorted(
        (Sample(source.folder / r["file"], source.name, "train", source.label,
                r.get("patient_id") or Path(r["file"]).stem) for r in rows),
        key=lambda s: s.path,
    )


def list_samples(source_dirs: Sequence[Source], split: str) -> list[Sample]:
    """All image files of ``split`` in the given sources, sorted for reproducibility."""
    samples = []
    for source_dir in source_dirs:
        if isinstance(source_dir, CatalogueSource):
            samples += _catalogue_samples(source_dir, split)
            continue
        source_dir = Path(source_dir)
        if not (source_dir / split).is_dir():
            raise FileNotFoundError(f"{source_dir} has no '{split}' folder")
        patients = _patient_map(source_dir)
        for class_dir in sorted(p for p in (source_dir / split).iterdir() if p.is_dir()):
            for path in sorted(class_dir.iterdir()):
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                rel = f"{split}/{class_dir.name}/{path.name}"
                nih = _NIH_PATIENT.match(path.name)
                patient = patients.get(rel) or (nih.group(1) if nih else path.stem)
                samples.append(
                    Sample(path, source_dir.name, split, class_label(class_dir.name), patient)
                )
    return samples


def order_classes(labels: set[str]) -> list[str]:
    """Stable class order: Radio's usual three first, anything else alphabetically."""
    known = [c for c in PREFERRED_ORDER if c in labels]
    return known + sorted(labels - set(known))


def load(
    source_dirs: Sequence[Source], split: str, classes: list[str] | None = None,
    size: int = IMAGE_SIZE,
) -> Dataset:
    """Decode every image of ``split``; unreadable files are reported by name and skipped."""
    candidates = list_samples(source_dirs, split)
    classes = classes or order_classes({s.label for s in candidates})
    kept, arrays, skipped = [], [], []
    for sample in candidates:
        if sample.label not in classes:
            skipped.append((sample.path, f"class '{sample.label}' is not one of {classes}"))
            continue
        try:
            arrays.append(preprocess_path(sample.path, size))
        except (ImageError, OSError) as exc:
            skipped.append((sample.path, str(exc)))
            continue
        kept.append(sample)
    for path, reason in skipped:
        log.warning("skipped %s: %s", path, reason)
    images = np.stack(arrays) if arrays else np.zeros((0, size, size), np.uint8)
    return Dataset(kept, images, classes, skipped)


def dataset_version(datasets: list[Dataset]) -> str:
    """Content hash of the file list (source, split, class, name, bytes): the data version."""
    digest = hashlib.sha256()
    for ds in datasets:
        for s in ds.samples:
            digest.update(f"{s.source}/{s.relpath}\0".encode())
            digest.update(hashlib.sha256(s.path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def describe(ds: Dataset) -> dict[str, int]:
    """Counts per ``source/class``, for logs and the run summary."""
    return dict(sorted(Counter(f"{s.source}/{s.label}" for s in ds.samples).items()))
