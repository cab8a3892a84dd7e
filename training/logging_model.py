"""Logging the served pyfunc to MLflow and registering it under an alias."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from serving.preprocessing import IMAGE_SIZE
from serving.wire import COLUMN, encode_image
from training.registry_folder import ALIAS

PIP_REQUIREMENTS = ["mlflow==3.17.*", "onnxruntime==1.32.*", "numpy", "pandas", "pillow"]


def serving_package() -> Path:
    """A clean copy of the ``serving`` package (no caches) for ``code_paths``.

    The registry stores the package itself: a version serves the code it was logged with,
    and ``serving`` imports nothing from ``training`` (tested), so nothing else is needed.
    """
    import serving

    dest = Path(tempfile.mkdtemp()) / "serving"
    shutil.copytree(
        Path(serving.__file__).parent, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return dest


def example_image() -> np.ndarray:
    """A synthetic gradient in the input contract: the registry must hold no patient image."""
    return np.tile(np.linspace(0, 255, IMAGE_SIZE).astype(np.uint8)[:, None], (1, IMAGE_SIZE))


def signature():
    """Input: one base64 uint8 image per row; param ``heatmap`` (bool)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string", COLUMN)]),
        params=ParamSchema([ParamSpec("heatmap", "boolean", True)]),
    )


def log_and_register(
    model_dir: Path,
    files: dict[str, str],
    name: str,
    dataset_version: str,
    promote: bool,
    lineage: dict[str, str] | None = None,
) -> dict[str, str]:
    """Log the pyfunc (Keras source of truth + ONNX copy + parameters), register, alias it.

    Lineage tags: ``parent_version`` is the model training *started from* (``none`` from
    scratch), not the production version of the day; ``mode`` how it was trained;
    ``lineage`` (from :mod:`lifecycle.retrain`) overrides both and adds the dataset
    manifest hash.
    """
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    from serving.pyfunc import RadioModel

    package = serving_package()
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=RadioModel(),
        artifacts={k: str(model_dir / f) for k, f in files.items()},
        code_paths=[str(package)],
        signature=signature(),
        input_example=(pd.DataFrame({COLUMN: [encode_image(example_image())]}), {"heatmap": False}),
        pip_requirements=PIP_REQUIREMENTS,
    )
    client = MlflowClient()
    run = mlflow.active_run()
    # active_run() is a snapshot taken at start_run: read the tags set since from the store
    # (reading the snapshot is why version 1 says git_commit=unknown).
    run_tags = client.get_run(run.info.run_id).data.tags if run else {}
    tags = {
        "dataset_version": dataset_version,
        "git_commit": run_tags.get("git_commit", "unknown"),
        "parent_version": "none",
        "mode": "scratch",
        "run_id": run.info.run_id if run else "",
    } | (lineage or {})
    mv = mlflow.register_model(info.model_uri, name, tags=tags)
    if promote:
        client.set_registered_model_alias(name, ALIAS, mv.version)
    return {"name": name, "version": str(mv.version), "alias": ALIAS if promote else "", **tags}
