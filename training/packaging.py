"""The packaging stage: the chosen fold members become the folder of artefacts the
served pyfunc loads (Keras ensemble, its ONNX copy, the OOD detector, ``meta.json``).

Temperature and COVID threshold come from the out-of-fold logits, never from val: the val
splits are kept for the evaluation stage, used once.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from serving.decision import COVID, softmax
from serving.ood import negative_inputs
from training import chest_gate, ood
from training.calibration import fit_temperature
from training.chest_gate import Negatives
from training.metrics import choose_covid_threshold

# Artefact key (as the pyfunc names it) -> file name in the model folder.
ARTIFACT_FILES = {
    "onnx": "model.onnx",
    "ood": "ood.npz",
    "meta": "meta.json",
    "keras": "ensemble.keras",
}
# Optional: the lung segmenter of a model that classifies the lung region (serving.lungs).
LUNGS_FILE = "lungs.onnx"
# Optional: the unfamiliar-film flag of a network with an "embedding" output.
FAMILIARITY_FILE = "familiarity.npz"


def artifact_files(model_dir: Path) -> dict[str, str]:
    """The artefacts of the model folder ``model_dir``: :data:`ARTIFACT_FILES`, plus
    ``lungs`` when the model crops the lung fields."""
    optional = {"lungs": LUNGS_FILE, "familiarity": FAMILIARITY_FILE}
    extra = {k: f for k, f in optional.items() if (Path(model_dir) / f).is_file()}
    return {**ARTIFACT_FILES, **extra}


@dataclass
class Packaged:
    """A model folder ready to serve and to register, with what packaging measured."""

    model_dir: Path
    meta: dict
    onnx_diff: dict[str, float]

    @property
    def temperature(self) -> float:
        """Softmax temperature fitted on the out-of-fold logits."""
        return self.meta["temperature"]

    @property
    def threshold(self) -> float | None:
        """COVID decision threshold (``None`` when the model has no COVID class)."""
        return self.meta["covid_threshold"]


def calibrate(
    oof_logits: np.ndarray, y: np.ndarray, classes: list[str]
) -> tuple[float, float | None]:
    """``(temperature, COVID threshold or None)`` from out-of-fold logits."""
    temperature = fit_temperature(oof_logits, y)
    probs = softmax(oof_logits, temperature)
    threshold = choose_covid_threshold(probs, y, classes) if COVID in classes else None
    return temperature, threshold


def package(
    members: list,
    oof_logits: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    train_images: np.ndarray,
    check_images: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    model_dir: Path,
    *,
    name: str,
    size: int,
    review_threshold: float,
    dataset_version: str,
    negatives: Negatives | None = None,
    train_groups: np.ndarray | None = None,
    lungs: Path | None = None,
    ensemble=None,
    backbone: str = "scratch",
) -> Packaged:
    """Write the model folder; ``check_images`` compare the ONNX copy with Keras.

    ``members`` are the fold models in fold order: the OOD detector's feature check of
    fold k is fitted on the k-th slice of the ensemble's features. With ``negatives``
    (real radiographs and scans that are not frontal chest films) and the train images'
    patient ``train_groups``, the gate also gets check 4 (:mod:`training.chest_gate`). With
    ``lungs`` (the segmenter's ONNX file) the model crops the lung region before the network:
    ``train_images`` and ``negatives`` must then be crops already (as the network saw them).
    ``ensemble``: the served graph when it is not the mean of ``members`` (the frozen
    backbone's, :mod:`training.frozen`); with an ``embedding`` output the model also gets
    the unfamiliar-film flag, fitted out of fold on the served features.
    """
    from training import export, familiarity
    from training.model import build_ensemble

    temperature, threshold = calibrate(oof_logits, y, classes)
    model_dir.mkdir(parents=True)
    if ensemble is None:
        ensemble = build_ensemble(members, size)
    ensemble.save(model_dir / ARTIFACT_FILES["keras"])
    onnx_path = export.to_onnx(ensemble, model_dir / ARTIFACT_FILES["onnx"], size)
    onnx_diff = export.max_difference(ensemble, onnx_path, check_images)
    # The detector is fitted on the features the server computes: the ONNX copy's.
    train_out = export.onnx_outputs(onnx_path, train_images)
    detector = ood.fit(train_out["features"], train_images, folds)
    gate_meta = None
    if negatives is not None and len(negatives.kinds) and train_groups is not None:
        neg_out = export.onnx_outputs(onnx_path, negatives.images)
        check = chest_gate.fit_negative_check(
            negative_inputs(train_images, train_out["features"]), train_groups,
            negative_inputs(negatives.images, neg_out["features"]), negatives.groups,
        )
        chest_gate.attach(detector, check)
        gate_meta = {
            "C": check.c,
            "threshold": check.threshold,
            "n_negatives": len(negatives.kinds),
            "oof_chest_refused": check.oof_chest_refused,
            "oof_negatives_caught": check.oof_negatives_caught,
        }
    detector.save(model_dir / ARTIFACT_FILES["ood"])
    fam_meta = None
    if "embedding" in train_out:
        fam = familiarity.fit_leave_patient_out(train_out["embedding"], train_groups)
        fam.save(model_dir / FAMILIARITY_FILE)
        fam_meta = {"k": fam.k, "threshold": fam.threshold, "target": familiarity.TARGET}
    meta = {
        "name": name,
        "classes": classes,
        "image_size": size,
        "temperature": temperature,
        "covid_threshold": threshold,
        "review_threshold": review_threshold,
        "dataset_version": dataset_version,
        "members": len(members) or len(folds),
        "backbone": backbone,  # the recipe retraining follows (lifecycle.retrain)
        **({"gate": gate_meta} if gate_meta else {}),
        **({"familiarity": fam_meta} if fam_meta else {}),
    }
    if lungs is not None:
        shutil.copy2(lungs, model_dir / LUNGS_FILE)
        meta["lungs"] = True
    (model_dir / ARTIFACT_FILES["meta"]).write_text(json.dumps(meta, indent=2))
    return Packaged(model_dir, meta, onnx_diff)


def load_served(model_dir: Path):
    """The pyfunc exactly as the model server builds it, from a folder of artefacts."""
    from serving.pyfunc import RadioModel

    model = RadioModel()
    model.load_context(SimpleNamespace(
        artifacts={k: str(model_dir / f) for k, f in artifact_files(model_dir).items()}
    ))
    return model
