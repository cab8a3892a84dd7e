"""Partial fine-tuning of the ImageNet Lite0: its last MBConv stage, conv_head and a head.

Fine-tuning all 4.65 M parameters on 2 shared CPU cores costs minutes per epoch, too much
to compare recipes by leave-one-source-out with three seeds. The backbone is therefore cut
at the input of its last stage (block :data:`CUT_BLOCK`, a ``7 x 7 x 192`` map at 224 px):
the frozen bottom runs once per film and its activations are cached on disk under the
hash of the film's pixels (:func:`activations_of`, as :func:`training.frozen.features_of`
caches pooled features); only the top (the remaining block, conv_head, a Dense head;
1.0 M parameters, ~50 M multiply-adds per film) is trained, on the cached maps.

The recipe is "linear probe, then fine-tune" (Kumar et al., ICLR 2022: fine-tuning from a
random head distorts the pretrained features and does worse out of distribution than from
a fitted linear probe): the Dense head starts as the frozen recipe's cross-validated
logistic regression (:func:`training.frozen.cross_validate`), so epoch 0 IS the frozen
recipe, and early stopping on a patient-grouped fifth (weighted loss) keeps the best epoch,
epoch 0 included. BatchNorm layers stay in inference mode with ImageNet's statistics
(Keras' advice for fine-tuning; batches of 32 films would otherwise replace statistics
gathered on a million images, and the top would no longer reproduce the frozen features
at the start).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.frozen import Head, cross_validate, weighted_nll

# First block of the trained top: 15 = EfficientNet-Lite0's last stage (192 -> 320).
CUT_BLOCK = 15
LAST_BLOCK = 15


@dataclass(frozen=True)
class TopHParams:
    """How the top is fine-tuned (see module)."""

    # 3e-5: least stop-fifth loss of 3e-4, 1e-4, 3e-5 in the LOSO fits (an inner criterion)
    learning_rate: float = 3e-5
    epochs: int = 8
    patience: int = 2
    batch_size: int = 32
    dropout: float = 0.2
    flip: bool = True  # horizontal flip of the cached maps (an approximation of a flipped film)


def _cut_input_name(cut: int) -> str:
    """The layer whose input is the cut tensor (block ``cut``'s first layer)."""
    return f"blocks_{cut}_expand_conv"


def build_bottom(size: int, cut: int = CUT_BLOCK):
    """Frozen Lite0 up to the input of block ``cut``: uint8 grey ``(N, size, size, 1)`` ->
    ``(N, size/32, size/32, C)``, traced once."""
    import keras
    import tensorflow as tf

    from training.lite0 import Lite0Normalize
    from training.pretrained import build_backbone

    backbone = build_backbone(size)
    inner = keras.Model(backbone.input, backbone.get_layer(_cut_input_name(cut)).input)
    inp = keras.Input((size, size, 1), name="image")
    model = keras.Model(inp, inner(Lite0Normalize(name="lite0_normalize")(inp), training=False))
    return tf.function(lambda x: model(x, training=False), reduce_retracing=True)


def _compute(images: np.ndarray, cut: int, batch_size: int = 32) -> np.ndarray:
    bottom = build_bottom(int(images.shape[1]), cut)
    return np.concatenate([np.asarray(bottom(images[i:i + batch_size, ..., None]
                                             .astype(np.float32)))
                           for i in range(0, len(images), batch_size)])


def activations_of(images: np.ndarray, cache: Path | None = None,
                   cut: int = CUT_BLOCK) -> np.ndarray:
    """The frozen bottom's maps ``(N, h, w, C)`` float32 of uint8 ``(N, H, W)`` films, each
    kept in ``cache/block<cut>`` under the hash of its pixels: computed once per film."""
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"expected square grey images (N, H, W), got shape {images.shape}")
    if cache is None:
        return _compute(images, cut)
    folder = Path(cache) / f"block{cut}"
    paths = [folder / f"{hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest()[:32]}"
             f"-{im.shape[0]}.npy" for im in images]
    todo = [i for i, p in enumerate(paths) if not p.is_file()]
    if todo:
        folder.mkdir(parents=True, exist_ok=True)
        for i, a in zip(todo, _compute(images[todo], cut), strict=True):
            np.save(paths[i], a)
    return np.stack([np.load(p) for p in paths])


def build_top(in_shape: tuple[int, int, int], n_classes: int, cut: int = CUT_BLOCK,
              dropout: float = 0.2, flip: bool = False, seed: int = 0):
    """Cached maps -> ``(logits, pooled 1280 features)``; blocks ``cut``.. and conv_head
    carry the ImageNet weights, BatchNorm frozen (inference mode), the Dense head is zero
    until :func:`set_head`."""
    import keras
    from keras import layers

    from training.lite0 import HEAD, STAGES, _block, _bn
    from training.pretrained import build_backbone

    # block index -> (expand, kernel, stride, out), as build_lite0 numbers them
    plan = [(e, k, s if r == 0 else 1, o) for e, k, s, n, o in STAGES for r in range(n)]
    inp = keras.Input(in_shape, name="maps")
    x = layers.RandomFlip("horizontal", seed=seed, name="flip")(inp) if flip else inp
    for i in range(cut, LAST_BLOCK + 1):
        x = _block(x, i, *plan[i])
    x = layers.Conv2D(HEAD, 1, use_bias=False, name="conv_head")(x)
    x = _bn("bn1")(x)
    x = layers.ReLU(6.0, name="relu_head")(x)
    pooled = layers.GlobalAveragePooling2D(name="gap")(x)
    logits = layers.Dense(n_classes, kernel_initializer="zeros", name="head")(
        layers.Dropout(dropout, seed=seed, name="dropout")(pooled))
    top = keras.Model(inp, [logits, pooled], name="lite0_top")
    source = build_backbone(None)
    for layer in top.layers:
        if layer.weights and layer.name != "head":
            layer.set_weights(source.get_layer(layer.name).get_weights())
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False  # inference mode: ImageNet's statistics (see module)
    return top


def set_head(top, head: Head) -> None:
    """The Dense head := a linear head on the pooled features (the linear probe)."""
    top.get_layer("head").set_weights([head.kernel.astype(np.float32),
                                       head.bias.astype(np.float32)])


def frozen_pooled(maps: np.ndarray, cut: int = CUT_BLOCK) -> np.ndarray:
    """The frozen backbone's pooled features ``(N, 1280)`` of cached maps (an untrained top)."""
    return predict(build_top(tuple(maps.shape[1:]), 1, cut), maps)[1]


def predict(top, maps: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(logits, pooled)`` of cached maps, inference mode (no flip, no dropout)."""
    out = [top(maps[i:i + batch_size], training=False) for i in range(0, len(maps), batch_size)]
    return (np.concatenate([np.asarray(o[0]) for o in out]),
            np.concatenate([np.asarray(o[1]) for o in out]))


@dataclass
class TopResult:
    """The fine-tuned top, the linear probe's strength and the epochs' figures."""

    top: object
    c: float
    probe: Head  # the linear probe the Dense head started as (the frozen recipe's head)
    stop_loss: list[float] = field(default_factory=list)  # index 0: the linear probe
    best_epoch: int = 0
    seconds_per_epoch: float = 0.0


def fine_tune(maps: np.ndarray, y: np.ndarray, weights: np.ndarray,
              folds: list[tuple[np.ndarray, np.ndarray]], stop_maps: np.ndarray,
              stop_y: np.ndarray, stop_weights: np.ndarray, n_classes: int,
              hp: TopHParams = TopHParams(), seed: int = 0, cut: int = CUT_BLOCK) -> TopResult:
    """Linear probe (CV over ``folds`` of the fit films), then fine-tuning of the top with
    class-balanced ``weights``; the weights of least weighted loss on the stop films."""
    import keras

    keras.utils.set_random_seed(seed)
    top = build_top(tuple(maps.shape[1:]), n_classes, cut, hp.dropout, hp.flip, seed)
    _, pooled = predict(top, maps)
    cv = cross_validate(pooled, y, weights, folds, n_classes)
    set_head(top, cv.mean_head())
    trainer = keras.Model(top.input, top.outputs[0])  # same layers, the logits only
    trainer.compile(optimizer=keras.optimizers.Adam(hp.learning_rate),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    res = TopResult(top, cv.c, cv.mean_head())
    res.stop_loss.append(weighted_nll(predict(top, stop_maps)[0], stop_y, stop_weights))
    best = top.get_weights()
    seconds = []
    for epoch in range(1, hp.epochs + 1):
        t0 = time.monotonic()
        trainer.fit(maps, y, sample_weight=weights, batch_size=hp.batch_size, epochs=1,
                shuffle=True, verbose=0)
        seconds.append(time.monotonic() - t0)
        res.stop_loss.append(weighted_nll(predict(top, stop_maps)[0], stop_y, stop_weights))
        if res.stop_loss[-1] < res.stop_loss[res.best_epoch]:
            res.best_epoch, best = epoch, top.get_weights()
        elif epoch - res.best_epoch >= hp.patience:
            break
    top.set_weights(best)
    res.seconds_per_epoch = float(np.mean(seconds)) if seconds else 0.0
    return res
