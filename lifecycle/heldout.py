"""The gate's held-out data and each version's answers to it, as the model server gives them.

Held-out data: the val split of every source folder named (``<source>/val/<class>/...``,
the layout of ``../shared/data`` and of reference dataset versions) and, when given, the
val side of a production dataset version (``app.datasets.service``: ``<class>/<sha256>.<ext>`` +
manifest), whose images count under ``production-<institution or site>`` so each hospital
is its own source.

Answers: each version is loaded from the registry in a fresh interpreter, with its own
stored ``serving`` code first on the path (as on the model server), and answers through
its pyfunc's ``predict_arrays``: calibration, COVID threshold and the "not a chest X-ray"
gate included.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serving.preprocessing import IMAGE_SIZE, ImageError, preprocess_path


@dataclass
class HeldOut:
    """Decoded images (model contract) with their reference label and source."""

    images: np.ndarray
    labels: list[str]
    sources: list[str]
    skipped: list[str]


def _val_files(sources: Sequence[Path]) -> list[tuple[Path, str, str]]:
    from training.data import list_samples

    return [(s.path, s.label, s.source) for s in list_samples(list(sources), "val")]


def _production_files(folder: Path) -> list[tuple[Path, str, str]]:
    """The val side of a production version (the train side may have trained a candidate:
    the split is the one every retraining uses, app.datasets.service.production_split)."""
    from app.datasets.service import production_source, production_split

    manifest = Path(folder) / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"{folder} is not a production dataset version (no manifest)")
    with manifest.open(newline="") as fh:
        return [(Path(folder) / row["file"], row["label"],
                 production_source(row.get("source") or row.get("site") or ""))
                for row in csv.DictReader(fh) if production_split(row["sha256"]) == "val"]


def load(val_sources: Sequence[Path], production: Path | None = None,
         size: int = IMAGE_SIZE) -> HeldOut:
    """Every held-out image; unreadable files are listed in ``skipped``, not hidden."""
    files = _val_files(val_sources) if val_sources else []
    if production is not None:
        files += _production_files(production)
    arrays, labels, sources, skipped = [], [], [], []
    for path, label, source in files:
        try:
            arrays.append(preprocess_path(path, size))
        except (ImageError, OSError) as exc:
            skipped.append(f"{path}: {exc}")
            continue
        labels.append(label)
        sources.append(source)
    images = np.stack(arrays) if arrays else np.zeros((0, size, size), np.uint8)
    return HeldOut(images, labels, sources, skipped)


# argv: tracking URI, name, version, images.npy, out.json (run from the registry root).
_ANSWER = """
import json, sys
import numpy as np
import mlflow
uri, name, version, images, out = sys.argv[1:]
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
model = mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()
x = np.load(images)
answers = []
for i in range(0, len(x), 64):
    answers += model.predict_arrays(x[i:i + 64], heatmap=False)
json.dump(answers, open(out, "w"))
"""


def answers(tracking_uri: str, root: Path, name: str, version: str,
            images: np.ndarray, timeout_s: float = 1200) -> list[dict]:
    """``name/version``'s answers to ``images`` (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", images)
        out = Path(tmp) / "out.json"
        env = {k: v for k, v in os.environ.items()
               if k.startswith(("MLFLOW_", "AWS_", "RADIO_ORT")) or k in ("PATH", "HOME")}
        env |= {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
                "RADIO_MODEL_VERSION": str(version)}
        proc = subprocess.run(
            [sys.executable, "-c", _ANSWER, tracking_uri, name, str(version),
             str(Path(tmp) / "x.npy"), str(out)],
            cwd=root, env=env, capture_output=True, text=True, timeout=timeout_s,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{name}/{version} could not answer:\n{proc.stderr[-2000:]}")
        return json.loads(out.read_text())
