"""Retraining in the three modes of the design, with lineage, progress and final figures.

    python -m lifecycle train --mode scratch --reference DIR
    python -m lifecycle train --mode scratch-plus-production --reference DIR --production DIR
    python -m lifecycle train --mode finetune --production DIR

* ``scratch``: from scratch on a reference dataset version (``DIR``: its source folders,
  ``<source>/{train,val}/<class>/...``; the default is every source of ``../shared/data``);
* ``scratch-plus-production``: from scratch on the reference plus a production dataset
  version (``app.datasets.service``), its images laid out as ``production-<hospital>`` sources with
  the train/val split every reference version uses;
* ``finetune``: the current production model's networks, trained further on the
  production version only (same outputs as the parent; smaller learning rate).

The version is registered without an alias, ready for ``python -m lifecycle deploy``;
lineage tags: ``parent_version`` (the model training started from: the production version
when fine-tuning, ``none`` from scratch), ``dataset_version`` (content hash of the images),
``dataset_manifest_hash`` (SHA-256 of the dataset versions' manifests), ``git_commit``,
``mode``. Progress (stage; setting, fold and epoch with their metrics) is written as JSON to
``--progress`` (the admin page's task file); the end result carries the val figures.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lifecycle import events, notify
from lifecycle import model_versions as reg
from lifecycle.settings import PROJECT_ROOT, Settings

MODES = ("scratch", "scratch-plus-production", "finetune")
FINETUNE_LR = 5e-4
# Real non-chest radiographs and scans for gate check 4 (as `make train`); a retrained
# version without them would lose the check that refuses lateral films and other body parts.
NEGATIVES = PROJECT_ROOT.parent / "shared" / "not-chest-xray"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``train`` command's options."""
    p.add_argument("--mode", choices=MODES, required=True)
    p.add_argument("--reference", type=Path, default=None,
                   help="reference dataset version folder (default: ../shared/data sources)")
    p.add_argument("--production", type=Path, default=None,
                   help="production dataset version folder (app.datasets.service)")
    p.add_argument("--registry", type=Path, default=None,
                   help="registry folder to register in (default RADIO_TRAIN_REGISTRY or mlflow)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--limit", type=int, default=None, help="at most N images per group")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--progress", type=Path, default=None,
                   help="JSON progress file (default RADIO_LIFECYCLE_PROGRESS)")


def source_folders(reference: Path) -> list[Path]:
    """The source folders of a reference version (or a data root): those with a train split."""
    if not reference.is_dir():
        raise FileNotFoundError(f"reference dataset {reference} not found")
    found = sorted(p for p in reference.iterdir() if (p / "train").is_dir())
    if not found:
        raise FileNotFoundError(f"{reference} holds no source folder with a train split")
    return found


def production_sources(production: Path, into: Path) -> list[Path]:
    """A production version laid out as training sources (links, split by image hash)."""
    from app.datasets.service import production_source, production_split

    manifest = production / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"{production} is not a production dataset version")
    made: set[Path] = set()
    with manifest.open(newline="") as fh:
        for row in csv.DictReader(fh):
            source = into / production_source(row.get("source") or row.get("site") or "")
            dest = source / production_split(row["sha256"]) / row["label"] / Path(
                row["file"]).name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.exists():
                dest.symlink_to((production / row["file"]).resolve())
            made.add(source)
    for source in made:
        for side in ("train", "val"):  # training expects both splits in every source
            (source / side).mkdir(exist_ok=True)
    if not made:
        raise FileNotFoundError(f"{production} holds no validated image")
    return sorted(made)


def manifest_hash(folders: list[Path]) -> str:
    """SHA-256 of the manifests of the dataset versions used (their file lists and hashes);
    folders without a manifest (raw sources) are hashed from their files' contents."""
    digest = hashlib.sha256()
    for folder in folders:
        manifest = folder / "manifest.csv"
        if manifest.is_file():
            digest.update(manifest.read_bytes())
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(f"{path.relative_to(folder)}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class ProgressFile:
    """Writes each progress report atomically to a JSON file (the page polls it)."""

    def __init__(self, path: Path | None):
        self.path = path

    def __call__(self, report: dict) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report))
        os.replace(tmp, self.path)


def parent_members(registry: Path, name: str, version: str) -> tuple[list, list[str], Path | None]:
    """The networks of ``name/version`` (from its Keras ensemble), its classes, and its lung
    segmenter (``None`` for a whole-film model): a fine-tuned child must see what its
    parent saw."""
    from contextlib import chdir

    import keras

    from serving.served_model import model_path
    from training.model import Standardize
    from training.registry_folder import use_registry

    use_registry(registry)
    with chdir(Path(registry).resolve().parent):
        folder = model_path(name, version) / "artifacts"
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("backbone", "scratch") != "scratch":
        # A frozen pretrained backbone has nothing to fine-tune: its child refits the head
        # on the new data with the same outputs (no networks to start from).
        return [], meta["classes"], None
    ensemble = keras.models.load_model(folder / "ensemble.keras",
                                       custom_objects={"Standardize": Standardize},
                                       compile=False)
    members = [layer for layer in ensemble.layers if isinstance(layer, keras.Model)]
    classes = meta["classes"]
    lungs = folder / "lungs.onnx"
    return members, classes, (lungs if lungs.is_file() else None)


def retrain(s: Settings, mode: str, by: str, reference: Path | None = None,
            production: Path | None = None, registry: Path | None = None,
            epochs: int | None = None, folds: int = 5, limit: int | None = None,
            seed: int = 42, progress: Path | None = None) -> dict[str, Any]:
    """Train in ``mode`` and register (no alias); the run's summary with lineage."""
    from training.fit import HParams
    from training.pipeline import TrainConfig, run
    from training.sources import source_paths

    if mode not in MODES:
        raise reg.LifecycleError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    if mode != "scratch" and production is None:
        raise reg.LifecycleError(f"mode {mode} needs --production (a production dataset version)")
    registry = Path(registry or os.environ.get("RADIO_TRAIN_REGISTRY")
                    or PROJECT_ROOT / "mlflow")
    report = ProgressFile(progress or (Path(os.environ["RADIO_LIFECYCLE_PROGRESS"])
                                       if os.environ.get("RADIO_LIFECYCLE_PROGRESS") else None))
    hp = HParams() if epochs is None else HParams(epochs=epochs, patience=min(8, epochs))
    with tempfile.TemporaryDirectory() as tmp:
        datasets: list[Path] = []
        sources: list[Path] = []
        if mode != "finetune":
            ref = reference or PROJECT_ROOT.parent / "shared" / "data"
            sources = source_folders(ref) if reference else [
                p for p in source_paths(ref) if p.is_dir()]
            datasets.append(ref)
        if production is not None:
            sources += production_sources(Path(production).resolve(), Path(tmp))
            datasets.append(Path(production))
        lineage = {"mode": mode, "parent_version": "none",
                   "dataset_manifest_hash": manifest_hash(datasets)}
        init, classes, lungs = None, None, None
        # The production recipe (README's model card); RADIO_TRAIN_BACKBONE=scratch retrains
        # version 1's CNN.
        backbone = os.environ.get("RADIO_TRAIN_BACKBONE", "lite0-frozen")
        if mode == "finetune":
            from training.registry_folder import tracking_uri

            parent = reg.alias_version(reg.client(tracking_uri(registry)), s.model_name,
                                       reg.PRODUCTION)
            if parent is None:
                raise reg.LifecycleError("fine-tuning needs a production version to start from")
            init, classes, lungs = parent_members(registry, s.model_name, parent)
            backbone = "scratch" if init else "lite0-frozen"
            lineage["parent_version"] = parent
            hp = HParams(hp.epochs, hp.batch_size, FINETUNE_LR, hp.dropout, hp.patience,
                         hp.schedule)
        events.record(s.events_log, "training_started", mode=mode, by=by,
                      sources=[p.name for p in sources])
        summary = run(TrainConfig(sources=sources, registry=registry, grid=[hp], folds=folds,
                                  seed=seed, limit=limit, model_name=s.model_name,
                                  promote=False, classes=classes, init_members=init,
                                  lineage=lineage, progress=report, lungs=lungs,
                                  backbone=backbone,
                                  negatives=NEGATIVES if NEGATIVES.is_dir() else None))
    result = {"version": summary["model"]["version"], "mode": mode, "lineage": lineage,
              "dataset_version": summary["dataset_version"], "val": summary["val"],
              "cv_accuracy": summary["cv_accuracy"], "seconds": round(summary["seconds"], 1)}
    report({"stage": "done", **result})
    events.record(s.events_log, "trained", by=by, version=result["version"], mode=mode,
                  parent_version=lineage["parent_version"])
    union = summary["val"].get("union", {})
    notify.send(f"training finished: {s.model_name} version {result['version']} ({mode})",
                f"Version {result['version']} registered (no alias), parent "
                f"{lineage['parent_version']}, dataset {summary['dataset_version']}.\n"
                f"Val (union): seen accuracy {union.get('seen_accuracy')}, COVID recall "
                f"{union.get('seen_covid_recall')}.\nNext: python -m lifecycle deploy "
                f"{result['version']}")
    return result


def from_args(args: argparse.Namespace, s: Settings, by: str) -> dict[str, Any]:
    """``lifecycle train`` from parsed arguments."""
    return retrain(s, args.mode, by, args.reference, args.production, args.registry,
                   args.epochs, args.folds, args.limit, args.seed, args.progress)
