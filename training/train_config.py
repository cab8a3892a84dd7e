"""What a training run depends on: :class:`TrainConfig` (logged as the run's parameters).

Its own module so that the tracking stage (:mod:`training.tracking`) can read it without
importing the pipeline that calls it (no import cycle); :mod:`training.pipeline`
re-exports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from serving.preprocessing import IMAGE_SIZE
from serving.served_model import MODEL_NAME
from training.fit import HParams
from training.sources import Source


@dataclass
class TrainConfig:
    """Everything a run depends on (logged as parameters)."""

    sources: list[Source]
    registry: Path | str  # a folder, or a tracking server's http(s) URL
    grid: list[HParams] = field(default_factory=lambda: [HParams()])
    folds: int = 5
    seed: int = 42
    balance: str = "weights"  # or "downsample" (the reference design)
    limit: int | None = None  # at most this many images per source/class/split (smoke runs)
    model_name: str = MODEL_NAME
    promote: bool = True
    review_threshold: float = 0.6
    size: int = IMAGE_SIZE
    # Real radiographs and scans that are not frontal chest films (<dir>/train/<kind>/*):
    # with them the "not a chest X-ray" gate gets check 4 (training/chest_gate.py).
    negatives: Path | None = None
    # Retraining (lifecycle.retrain): the model's outputs when fixed by a parent, the
    # parent's members to start from (fine-tuning), lineage tags for the registered
    # version (parent_version, mode, dataset_manifest_hash), a progress callback.
    classes: list[str] | None = None
    init_members: list | None = None
    lineage: dict[str, str] = field(default_factory=dict)
    progress: Callable[[dict], None] | None = None
    # The lung segmenter (ONNX, ``python -m training.lungs``): with it the network is
    # trained and served on the lung region (serving.lungs) and ships the segmenter.
    lungs: Path | None = None
    # "scratch": version 1's CNN trained from scratch (grid search over ``grid``);
    # "lite0-frozen": ImageNet EfficientNet-Lite0 features + a cross-validated linear head
    # (training.frozen), with the unfamiliar-film flag.
    backbone: str = "scratch"
    # Where the frozen backbone's features are kept between runs (None: recomputed).
    feature_cache: Path | None = None
