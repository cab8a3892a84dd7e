"""Fixtures of the monitoring tests: the shipped production model's folder and features of
the real train and val images (computed once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def shipped_production() -> tuple[str, Path]:
    """(version, folder) of the shipped registry's production version (read in place, never
    written), whatever registry an earlier test pointed MLflow at."""
    import os

    from helpers import mlflow_target

    from serving.served_model import model_path, resolve
    from training.registry_folder import tracking_uri

    cwd = os.getcwd()
    os.chdir(ROOT)  # the shipped registry's paths are relative to the project root
    try:
        with mlflow_target(tracking_uri(ROOT / "mlflow")):
            version = resolve("radio-cxr", "production")
            return version, model_path("radio-cxr", version).resolve()
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="session")
def production_dir(shipped_production) -> Path:
    """Folder of the shipped registry's production version."""
    return shipped_production[1]


# The version whose network features the drift method's documented figures were measured
# with (docs/monitoring.md). Version 10's features (frozen ImageNet Lite0) are not yet
# calibrated: with them covid19-3class's val split is told apart from its train split.
CALIBRATED_VERSION = "6"


@pytest.fixture(scope="session")
def calibrated_dir() -> Path:
    """Folder of :data:`CALIBRATED_VERSION` in the shipped registry (kept for roll-back)."""
    import os

    from helpers import mlflow_target

    from serving.served_model import model_path
    from training.registry_folder import tracking_uri

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with mlflow_target(tracking_uri(ROOT / "mlflow")):
            return model_path("radio-cxr", CALIBRATED_VERSION).resolve()
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="session")
def real_features(real_sources, calibrated_dir):
    """{"train"|"val": (images, network features, image statistics, sources, patients)}."""
    import numpy as np

    from monitoring.features import NetworkFeatures, image_statistics
    from monitoring.reference import images_of

    net = NetworkFeatures(calibrated_dir)
    out = {}
    for split in ("train", "val"):
        images, samples = images_of(real_sources[0].parent, split)
        out[split] = (images, net(images), image_statistics(images),
                      np.array([s.source for s in samples]),
                      np.array([f"{s.source}/{s.patient}" for s in samples]))
    return out, net
