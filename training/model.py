"""The Keras network: a small CNN whose head allows class activation maps.

Design for this data (a few hundred images, 2 CPU cores):
* the first layer standardises each image, so exposure and detector gain never reach
  the convolutions;
* five conv blocks (BatchNorm momentum 0.9: few batches per epoch), global average
  pooling and ONE linear layer: the logits are then a linear function of the pooled last
  feature maps, so the class activation map is exact and needs no gradient;
* the ensemble averages its members' logits and CAMs in the graph, and exposes the
  concatenated pooled features for the out-of-distribution detector.
"""

from __future__ import annotations

import keras
from keras import layers, ops

# Registers Lite0Normalize: whoever loads a saved ensemble through this module (the
# reference server of make bench, retraining, the export tests) can read a pretrained one.
import training.lite0  # noqa: E402,F401

FILTERS = (16, 32, 64, 96, 128)


@keras.saving.register_keras_serializable(package="radio")
class Standardize(layers.Layer):
    """Per-image zero mean, unit variance (std floored at 1 grey level for blank images)."""

    def call(self, x):
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        var = ops.mean(ops.square(x - mean), axis=(1, 2, 3), keepdims=True)
        return (x - mean) / ops.maximum(ops.sqrt(var), 1.0)


def build_member(
    n_classes: int, size: int, dropout: float = 0.3, name: str = "member"
) -> keras.Model:
    """One CNN: uint8-valued float input ``(N, size, size, 1)`` -> [logits, last feature maps]."""
    inp = keras.Input((size, size, 1), name="image")
    x = Standardize(name="standardize")(inp)
    for i, f in enumerate(FILTERS):
        x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if i < len(FILTERS) - 1:
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    fmap = x
    pooled = layers.GlobalAveragePooling2D(name="gap")(fmap)
    pooled = layers.Dropout(dropout, name="dropout")(pooled)
    logits = layers.Dense(n_classes, name="logits")(pooled)
    return keras.Model(inp, [logits, fmap], name=name)


def classifier(member: keras.Model) -> keras.Model:
    """The member's logits alone, for training with a single loss."""
    return keras.Model(member.input, member.output[0], name=f"{member.name}_clf")


def build_ensemble(members: list[keras.Model], size: int) -> keras.Model:
    """Members -> one graph: mean logits, mean CAM ``(N, h, w, classes)``, pooled features."""
    inp = keras.Input((size, size, 1), name="image")
    logits, cams, feats = [], [], []
    for m in members:
        lg, fmap = m(inp, training=False)
        dense = m.get_layer("logits")
        kernel = ops.convert_to_numpy(dense.kernel)
        # The CAM of class k is the logit layer applied at every position: a 1x1 conv with
        # the same kernel (bias left out: it does not vary over the image).
        cam_layer = layers.Conv2D(kernel.shape[1], 1, use_bias=False, name=f"cam_{m.name}")
        cam = cam_layer(fmap)
        cam_layer.set_weights([kernel[None, None]])
        logits.append(lg)
        cams.append(cam)
        feats.append(layers.GlobalAveragePooling2D(name=f"feat_{m.name}")(fmap))

    def mean(xs, name):
        return xs[0] if len(xs) == 1 else layers.Average(name=name)(xs)

    out_logits = layers.Identity(name="logits")(mean(logits, "mean_logits"))
    out_cam = layers.Identity(name="cam")(mean(cams, "mean_cam"))
    out_feat = layers.Identity(name="features")(
        feats[0] if len(feats) == 1 else layers.Concatenate(name="concat")(feats)
    )
    return keras.Model(inp, [out_logits, out_cam, out_feat], name="radio_ensemble")
