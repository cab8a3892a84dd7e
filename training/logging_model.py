"""Logging the served pyfunc to MLflow and registering it under an alias."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from training.preprocessing import IMAGE_SIZE
from training.registry import ALIAS
from training.wire import COLUMN, encode_image

# What the served pyfunc imports (serving.py and its training.* imports): only these are
# copied into the registry, so it does not carry a second copy of the training code.
SERVING_MODULES = (
    "__init__.py",
    "serving.py",
    "metrics.py",
    "ood.py",
    "wire.py",
    "preprocessing.py",
)
PIP_REQUIREMENTS = ["mlflow==3.17.*", "onnxruntime==1.32.*", "numpy", "pandas", "pillow"]


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
) -> dict[str, str]:
    """Log the pyfunc (Keras source of truth + ONNX copy + parameters), register, alias it."""
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    import training
    from training.serving import RadioModel

    package = Path(tempfile.mkdtemp()) / "training"
    package.mkdir()
    for module in SERVING_MODULES:
        shutil.copy2(Path(training.__file__).parent / module, package / module)
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
    try:
        parent = str(client.get_model_version_by_alias(name, ALIAS).version)
    except MlflowException:
        parent = "none"
    run = mlflow.active_run()
    tags = {
        "dataset_version": dataset_version,
        "git_commit": run.data.tags.get("git_commit", "unknown") if run else "unknown",
        "parent_version": parent,
        "run_id": run.info.run_id if run else "",
    }
    mv = mlflow.register_model(info.model_uri, name, tags=tags)
    if promote:
        client.set_registered_model_alias(name, ALIAS, mv.version)
    return {"name": name, "version": str(mv.version), "alias": ALIAS if promote else "", **tags}
