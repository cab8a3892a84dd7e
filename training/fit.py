"""Training one network: X-ray augmentation, weighted loss, early stopping on held-out data."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from training.model import build_member, classifier  # noqa: E402


@dataclass(frozen=True)
class HParams:
    """Hyper-parameters of one network (chosen by cross-validation)."""

    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 2e-3
    dropout: float = 0.3
    patience: int = 8
    schedule: str = "plateau"  # or "cosine": smooth decay to 5% over the epochs
    # "standard" (version 1's) or "strong": wider random resized crops, stronger exposure
    # changes, simulated text markers and film borders (:func:`_shortcut_noise`).
    augment: str = "standard"
    mixup: float = 0.0  # Beta(a, a) mixing of image pairs and their labels; 0 = off


def augmenter(seed: int, strength: str = "standard") -> keras.Sequential:
    """Geometric augmentation plausible for a frontal film: no vertical flips.

    ``strong`` zooms in up to 25% (a random resized crop: the model cannot rely on the
    film's edges and corners being in view) and out 10%, and shifts further.
    """
    strong = strength == "strong"
    return keras.Sequential(
        [
            keras.layers.RandomRotation(0.04 if strong else 0.03, fill_mode="constant",
                                        seed=seed),
            keras.layers.RandomTranslation(0.1 if strong else 0.06, 0.1 if strong else 0.06,
                                           fill_mode="constant", seed=seed + 1),
            keras.layers.RandomZoom((-0.25, 0.1) if strong else (-0.1, 0.1),
                                    fill_mode="constant", seed=seed + 2),
        ],
        name="augment",
    )


def _shortcut_noise(x: tf.Tensor, seed: int) -> tf.Tensor:
    """Simulated text markers (bright blocks near the edges) and film borders (dark or
    bright bands of random width on random sides): cues that told sources apart in version
    1's heatmaps, now put on any class's films so they stop predicting the label."""
    n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    rows = tf.cast(tf.range(h), tf.float32)[None, :, None, None] / tf.cast(h, tf.float32)
    cols = tf.cast(tf.range(w), tf.float32)[None, None, :, None] / tf.cast(w, tf.float32)

    def u(lo, hi, k):
        return tf.random.uniform((n, 1, 1, 1), lo, hi, seed=seed + k)

    # A marker: a 3-9% block in the outer fifth of the film, on half the images.
    edge_y = tf.where(u(0, 1, 10) < 0.5, u(0.0, 0.15, 11), u(0.76, 0.9, 12))
    edge_x = u(0.0, 0.9, 13)
    size_y, size_x = u(0.03, 0.09, 14), u(0.03, 0.09, 15)
    in_marker = ((rows >= edge_y) & (rows < edge_y + size_y)
                 & (cols >= edge_x) & (cols < edge_x + size_x))
    has_marker = u(0, 1, 16) < 0.5
    x = tf.where(in_marker & has_marker, u(200, 255, 17) * tf.ones_like(x), x)
    # A border: up to 8% of the side, dark or bright, on a third of the images.
    width = u(0.0, 0.08, 18)
    side = tf.random.uniform((n, 1, 1, 1), 0, 4, dtype=tf.int32, seed=seed + 19)
    in_band = tf.where(side == 0, rows < width, tf.where(side == 1, rows > 1 - width,
                       tf.where(side == 2, cols < width, cols > 1 - width)))
    has_border = u(0, 1, 20) < 0.33
    value = tf.where(u(0, 1, 21) < 0.5, 0.0, 255.0) * tf.ones_like(x)
    return tf.where(in_band & has_border, value, x)


def _mixup(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor, alpha: float, seed: int):
    """Mix each image and its one-hot label with another of the batch (Zhang et al. 2018)."""
    n = tf.shape(x)[0]
    g1 = tf.random.gamma((n,), alpha, seed=seed)
    g2 = tf.random.gamma((n,), alpha, seed=seed + 1)
    lam = g1 / (g1 + g2)
    perm = tf.random.shuffle(tf.range(n), seed=seed + 2)
    lx = lam[:, None, None, None]
    x = lx * x + (1 - lx) * tf.gather(x, perm)
    y = lam[:, None] * y + (1 - lam[:, None]) * tf.gather(y, perm)
    w = lam * w + (1 - lam) * tf.gather(w, perm)
    return x, y, w


def _photometric(x: tf.Tensor, seed: int, strong: bool = False) -> tf.Tensor:
    """Contrast, gamma, blur and noise on a 0-255 float batch (exposure and detector cues)."""
    n = tf.shape(x)[0]
    g = 0.5 if strong else 0.3
    gamma = tf.exp(tf.random.uniform((n, 1, 1, 1), -g, g, seed=seed))
    x = 255.0 * tf.pow(tf.clip_by_value(x / 255.0, 0.0, 1.0), gamma)
    mean = tf.reduce_mean(x, axis=(1, 2, 3), keepdims=True)
    lo, hi = (0.6, 1.4) if strong else (0.75, 1.25)
    contrast = tf.random.uniform((n, 1, 1, 1), lo, hi, seed=seed + 1)
    x = mean + (x - mean) * contrast
    blur_kernel = tf.constant([[1, 2, 1], [2, 4, 2], [1, 2, 1]], tf.float32)[..., None, None] / 16
    blurred = tf.nn.conv2d(x, blur_kernel, 1, "SAME")
    use_blur = tf.cast(tf.random.uniform((n, 1, 1, 1), seed=seed + 2) < 0.3, tf.float32)
    x = use_blur * blurred + (1 - use_blur) * x
    sigma = tf.random.uniform((n, 1, 1, 1), 0.0, 6.0, seed=seed + 3)
    x = x + sigma * tf.random.normal(tf.shape(x), seed=seed + 4)
    return tf.clip_by_value(x, 0.0, 255.0)


def make_dataset(
    images: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None,
    n_classes: int,
    batch_size: int,
    seed: int,
    train: bool,
    augment: str = "standard",
    mixup: float = 0.0,
) -> tf.data.Dataset:
    """tf.data pipeline: uint8 images -> float batches (augmented when ``train``)."""
    x = images[..., None].astype(np.float32)
    onehot = np.eye(n_classes, dtype=np.float32)[y]
    w = np.ones(len(y), np.float32) if weights is None else weights.astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((x, onehot, w))
    if train:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if train:
        aug = augmenter(seed, augment)
        strong = augment == "strong"

        def transform(a, b, c):
            a = _photometric(aug(a, training=True), seed, strong)
            if strong:
                a = _shortcut_noise(a, seed + 7)
            if mixup > 0:
                a, b, c = _mixup(a, b, c, mixup, seed + 11)
            return a, b, c

        ds = ds.map(transform, num_parallel_calls=1, deterministic=True)
    return ds.prefetch(2)


class _EpochLog(keras.callbacks.Callback):
    """Forwards each epoch's metrics to a function (MLflow logging lives elsewhere)."""

    def __init__(self, sink):
        super().__init__()
        self.sink = sink

    def on_epoch_end(self, epoch, logs=None):
        self.sink(epoch, dict(logs or {}))


def train_member(
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    held_out: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    n_classes: int,
    size: int,
    hp: HParams,
    seed: int,
    name: str = "member",
    on_epoch=None,
    verbose: int = 1,
    init: keras.Model | None = None,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Fit one member; early-stop on ``held_out`` (a CV fold of the train split) if given.

    ``train`` and ``held_out`` are ``(uint8 images, class indices, weights)``.
    ``init``: a trained member of the same shape to start from (fine-tuning) instead of
    random weights. Returns the member (``[logits, feature maps]`` outputs) and its history.
    """
    keras.utils.set_random_seed(seed)
    member = build_member(n_classes, size, hp.dropout, name=name)
    if init is not None:
        member.set_weights(init.get_weights())
    clf = classifier(member)
    steps = -(-len(train[1]) // hp.batch_size)
    lr = (
        keras.optimizers.schedules.CosineDecay(hp.learning_rate, hp.epochs * steps, alpha=0.05)
        if hp.schedule == "cosine"
        else hp.learning_rate
    )
    clf.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        weighted_metrics=["accuracy"],
    )
    train_ds = make_dataset(*train, n_classes, hp.batch_size, seed, train=True,
                            augment=hp.augment, mixup=hp.mixup)
    val_ds = None
    callbacks: list[keras.callbacks.Callback] = []
    if hp.schedule != "cosine":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau("loss", factor=0.5, patience=4, min_lr=1e-5)
        )
    if held_out is not None:
        val_ds = make_dataset(*held_out, n_classes, 64, seed, train=False)
        callbacks.append(
            keras.callbacks.EarlyStopping(
                "val_loss", patience=hp.patience, restore_best_weights=True
            )
        )
    if on_epoch is not None:
        callbacks.append(_EpochLog(on_epoch))
    history = clf.fit(
        train_ds, validation_data=val_ds, epochs=hp.epochs, callbacks=callbacks, verbose=verbose
    )
    return member, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def predict_logits(member: keras.Model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Logits of a member for uint8 images, without Keras' per-call progress bar."""
    clf = classifier(member)
    out = [
        np.asarray(clf(images[i : i + batch_size, ..., None].astype(np.float32), training=False))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, member.output[0].shape[-1]))
