"""The reference window of data drift: the training images, as the served model sees them.

``python -m monitoring.reference build --data ../shared/data --out reference.npz`` reads the
train split of every source (``training.sources``), computes the network features with the
production model and the image statistics, and saves them with each image's source and
patient and the model version. The drift job loads that file; network features of another
model version are not comparable, so the job refuses a reference built for another one,
unless it has the training data (``RADIO_DRIFT_DATA``, placed on the frontend by the
deployment): then :func:`current` rebuilds the reference for the version production names.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitoring.features import NetworkFeatures, image_statistics


@dataclass
class Reference:
    """Raw features of the reference images and what they are."""

    network: np.ndarray
    stats: np.ndarray
    sources: np.ndarray
    patients: np.ndarray
    model_version: str

    def save(self, path: str | Path) -> None:
        """Write an ``.npz``."""
        np.savez_compressed(path, network=self.network, stats=self.stats,
                            sources=self.sources, patients=self.patients,
                            model_version=np.array(self.model_version))

    @classmethod
    def load(cls, path: str | Path) -> Reference:
        """Read a file written by :meth:`save`."""
        z = np.load(path)
        return cls(z["network"], z["stats"], z["sources"], z["patients"],
                   str(z["model_version"]))


def images_of(data_root: str | Path, split: str) -> tuple[np.ndarray, list]:
    """uint8 model inputs of one split of every source, and their ``training.data`` samples."""
    from serving.preprocessing import preprocess_path
    from training.data import list_samples
    from training.sources import missing, source_paths

    paths = source_paths(data_root)
    absent = missing(paths)
    if absent:
        raise FileNotFoundError(f"sources missing: {', '.join(absent)}")
    samples = list_samples(paths, split)
    return np.stack([preprocess_path(s.path) for s in samples]), samples


def build(data_root: str | Path, model_dir: str | Path, model_version: str,
          split: str = "train") -> Reference:
    """Features of ``split`` of every source under ``data_root`` with one model version."""
    images, samples = images_of(data_root, split)
    return Reference(NetworkFeatures(model_dir)(images), image_statistics(images),
                     np.array([s.source for s in samples]),
                     np.array([f"{s.source}/{s.patient}" for s in samples]), model_version)


def current(path: str | Path, data_root: str | Path, model_dir: str | Path,
            model_version: str) -> Reference:
    """The reference at ``path`` for ``model_version``, built from ``data_root`` (and saved
    there) when it is absent or was built for another version: production moved, and the
    old network's features are not comparable. Written whole or not at all (a job killed
    mid-write leaves the previous file)."""
    path = Path(path)
    if path.is_file():
        reference = Reference.load(path)
        if reference.model_version == model_version:
            return reference
    reference = build(data_root, model_dir, model_version)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial.npz")
    reference.save(partial)
    partial.replace(path)
    return reference


def main(argv: list[str] | None = None) -> int:
    """``build --data DIR --out FILE``: the reference of the production model."""
    from serving.served_model import ALIAS, MODEL_NAME, model_path, resolve

    parser = argparse.ArgumentParser(prog="python -m monitoring.reference")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="features of the training images for drift checks")
    b.add_argument("--data", default="../shared/data")
    b.add_argument("--out", required=True)
    b.add_argument("--split", default="train")
    args = parser.parse_args(argv)
    version = resolve(MODEL_NAME, ALIAS)
    ref = build(args.data, model_path(MODEL_NAME, version), version, args.split)
    ref.save(args.out)
    print(f"{len(ref.stats)} reference images, model version {version} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
