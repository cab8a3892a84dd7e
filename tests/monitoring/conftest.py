"""Fixtures of the monitoring tests: the shipped production model's folder and features of
the real train and val images (computed once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def production_dir() -> Path:
    """Folder of the shipped registry's production version (read in place, never written)."""
    import os

    from training.registry import tracking_uri

    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking_uri(ROOT / "mlflow"))
    from serving.registry import model_path, resolve

    cwd = os.getcwd()
    os.chdir(ROOT)  # the shipped registry's paths are relative to the project root
    try:
        return model_path("radio-cxr", resolve("radio-cxr", "production"))
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="session")
def real_features(real_sources, production_dir):
    """{"train"|"val": (images, network features, image statistics, sources, patients)}."""
    import numpy as np

    from monitoring.features import NetworkFeatures, image_statistics
    from monitoring.reference import images_of

    net = NetworkFeatures(production_dir)
    out = {}
    for split in ("train", "val"):
        images, samples = images_of(real_sources[0].parent, split)
        out[split] = (images, net(images), image_statistics(images),
                      np.array([s.source for s in samples]),
                      np.array([f"{s.source}/{s.patient}" for s in samples]))
    return out, net
