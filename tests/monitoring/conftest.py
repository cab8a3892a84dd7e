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


def _features_cache(model_dir: Path, output: str, samples: list) -> Path:
    """Where the features of ``samples`` with the model in ``model_dir`` are kept: keyed by
    the ONNX graph's bytes, the output read and each image's path, size and time, so a new
    version or a corrected source computes them afresh (build/ is not in git)."""
    import hashlib

    digest = hashlib.sha256((model_dir / "artifacts" / "model.onnx").read_bytes())
    digest.update(output.encode())
    for s in samples:
        st = s.path.stat()
        digest.update(f"{s.path}:{st.st_size}:{st.st_mtime_ns}:{s.source}:{s.patient}".encode())
    return ROOT / "build" / "test-cache" / f"drift-{digest.hexdigest()[:24]}.npz"


@pytest.fixture(scope="session")
def real_features(real_sources, production_dir):
    """{"train"|"val": (images, network features, image statistics, sources, patients)} with
    the shipped production version's network, and that network. Features are kept on disk
    (``_features_cache``); the train images are then not decoded (None)."""
    import numpy as np

    from monitoring.features import NetworkFeatures, image_statistics
    from monitoring.reference import images_of
    from training.data import list_samples
    from training.sources import source_paths

    net = NetworkFeatures(production_dir)
    out = {}
    for split in ("train", "val"):
        samples = list_samples(source_paths(real_sources[0].parent), split)
        cache = _features_cache(production_dir, net.output, samples)
        images = None
        if cache.is_file():
            z = np.load(cache)
            feats, stats = z["network"], z["stats"]
        else:
            images, samples = images_of(real_sources[0].parent, split)
            feats, stats = net(images), image_statistics(images)
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, network=feats, stats=stats)
        if split == "val" and images is None:
            images, _ = images_of(real_sources[0].parent, split)
        out[split] = (images, feats, stats, np.array([s.source for s in samples]),
                      np.array([f"{s.source}/{s.patient}" for s in samples]))
    return out, net
