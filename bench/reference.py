"""The reference design, rebuilt for comparison: the same Keras network served by
``mlflow models serve`` from a JSON array of 224x224x3 floats, predicted with
``keras.Model.predict`` on every request."""

from __future__ import annotations

import io
from pathlib import Path

import mlflow.pyfunc
import numpy as np
from PIL import Image

SIZE = 224


def reference_array(data: bytes) -> np.ndarray:
    """The reference preprocessing: RGB, resized to 224x224, float32 in [0, 1]."""
    img = Image.open(io.BytesIO(data)).convert("RGB").resize((SIZE, SIZE))
    return np.asarray(img, dtype=np.float32) / 255.0


def reference_body(data: bytes) -> bytes:
    """The reference request body: ``{"inputs": [[[[r, g, b], ...]]]}`` as JSON text."""
    import json

    return json.dumps({"inputs": reference_array(data)[None].tolist()}).encode()


class ReferenceModel(mlflow.pyfunc.PythonModel):
    """Keras ensemble behind a float-RGB input, as the reference design served it."""

    def load_context(self, context) -> None:
        """Load the Keras source-of-truth network (TensorFlow in the server)."""
        import keras

        import training.model  # noqa: F401 - registers the custom layers (Standardize, Lite0Normalize)

        self.model = keras.models.load_model(context.artifacts["keras"])

    def predict(self, context, model_input, params=None):
        """(N, 224, 224, 3) floats in [0, 1] -> softmax probabilities (N, classes)."""
        x = np.asarray(model_input, dtype=np.float32)
        grey = x.mean(axis=-1, keepdims=True) * 255.0  # the network reads uint8-valued grey
        logits = self.model.predict(grey)[0]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def build(keras_path: Path, registry: Path) -> str:
    """Log the reference model into a scratch registry; returns its ``runs:/`` URI."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    mlflow.set_tracking_uri(f"sqlite:///{registry / 'mlflow.db'}")
    exp = mlflow.create_experiment("reference", artifact_location=str(registry / "artifacts"))
    sig = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, SIZE, SIZE, 3))]))
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.pyfunc.log_model(
            name="reference",
            python_model=ReferenceModel(),
            artifacts={"keras": str(keras_path)},
            signature=sig,
            pip_requirements=["mlflow", "tensorflow-cpu"],
        )
    return info.model_uri
