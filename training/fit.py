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


def augmenter(seed: int) -> keras.Sequential:
    """Geometric augmentation plausible for a frontal film: no vertical flips."""
    return keras.Sequential(
        [
            keras.layers.RandomRotation(0.03, fill_mode="constant", seed=seed),  # ~±10°
            keras.layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=seed + 1),
            keras.layers.RandomZoom((-0.1, 0.1), fill_mode="constant", seed=seed + 2),
        ],
        name="augment",
    )


def _photometric(x: tf.Tensor, seed: int) -> tf.Tensor:
    """Contrast, gamma, blur and noise on a 0-255 float batch (exposure and detector cues)."""
    n = tf.shape(x)[0]
    gamma = tf.exp(tf.random.uniform((n, 1, 1, 1), -0.3, 0.3, seed=seed))
    x = 255.0 * tf.pow(tf.clip_by_value(x / 255.0, 0.0, 1.0), gamma)
    mean = tf.reduce_mean(x, axis=(1, 2, 3), keepdims=True)
    contrast = tf.random.uniform((n, 1, 1, 1), 0.75, 1.25, seed=seed + 1)
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
        aug = augmenter(seed)
        ds = ds.map(
            lambda a, b, c: (_photometric(aug(a, training=True), seed), b, c),
            num_parallel_calls=1,
            deterministic=True,
        )
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
    train_ds = make_dataset(*train, n_classes, hp.batch_size, seed, train=True)
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
