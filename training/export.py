"""Keras ensemble -> ONNX, and the check that both give the same numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
import tf2onnx

OUTPUTS = ("logits", "cam", "features")
# Optional: the pooled backbone features, read by the unfamiliar-film flag
# (serving.familiarity); networks on a pretrained backbone have it.
OPTIONAL = ("embedding",)


def output_names(ensemble) -> tuple[str, ...]:
    """The ensemble's outputs in order: :data:`OUTPUTS`, then any of :data:`OPTIONAL`."""
    names = tuple(ensemble.output_names)
    if names[:3] != OUTPUTS or set(names[3:]) - set(OPTIONAL):
        raise RuntimeError(f"unexpected outputs {names}, expected {OUTPUTS} (+ {OPTIONAL})")
    return names


def to_onnx(ensemble, path: Path, size: int) -> Path:
    """Convert the ensemble (outputs logits, cam, features) to an ONNX file at ``path``."""
    spec = (tf.TensorSpec((None, size, size, 1), tf.float32, name="image"),)
    model_proto, _ = tf2onnx.convert.from_keras(ensemble, input_signature=spec, opset=17)
    names = [o.name for o in model_proto.graph.output]
    if sorted(names) != sorted(output_names(ensemble)):
        raise RuntimeError(f"unexpected ONNX outputs {names}, expected {OUTPUTS}")
    path.write_bytes(model_proto.SerializeToString())
    return path


def keras_outputs(ensemble, images: np.ndarray, batch_size: int = 32) -> dict[str, np.ndarray]:
    """The Keras ensemble's outputs for uint8 images (compiled call, no progress bar)."""
    names = output_names(ensemble)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size, ..., None].astype(np.float32)
        for k, v in zip(names, ensemble(x, training=False), strict=True):
            parts[k].append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in parts.items()}


def onnx_outputs(path: Path, images: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    """The ONNX copy's outputs for uint8 images (in batches: a pretrained backbone's
    activations for a whole train split would take gigabytes at once)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for i in range(0, max(len(images), 1), batch_size):
        x = images[i : i + batch_size, ..., None].astype(np.float32)
        for k, v in zip(names, sess.run(names, {"image": x}), strict=True):
            parts[k].append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def max_difference(ensemble, path: Path, images: np.ndarray) -> dict[str, float]:
    """Largest difference per output between Keras and ONNX on ``images``.

    Absolute for logits and features; for the CAM relative to each map's largest value,
    since the heatmap is shown scaled to [0, 1].
    """
    a, b = keras_outputs(ensemble, images), onnx_outputs(path, images)
    out = {k: float(np.max(np.abs(a[k] - b[k]))) for k in ("logits", "features")}
    scale = np.maximum(np.abs(a["cam"]).max(axis=(1, 2), keepdims=True), 1e-6)
    out["cam_relative"] = float(np.max(np.abs(a["cam"] - b["cam"]) / scale))
    return out
