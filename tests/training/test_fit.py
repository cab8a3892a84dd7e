"""training/fit.py: one member trained for two epochs on 32x32 images (seconds, no data)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training.fit import HParams, make_dataset, predict_logits, train_member
from training.model import build_member

SIZE = 32
HP = HParams(epochs=2, batch_size=8, learning_rate=1e-2, patience=2)


def images(n: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 32x32 images, class 1 with a bright centre, and their labels."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 80, (n, SIZE, SIZE)).astype(np.uint8)
    y = np.arange(n) % 2
    x[y == 1, 8:24, 8:24] += 150
    return x, y


def initial_member(seed: int) -> keras.Model:
    """The member train_member starts from with ``seed`` (same seed, same initial weights)."""
    keras.utils.set_random_seed(seed)
    return build_member(2, SIZE, HP.dropout)


def train(weights: np.ndarray, seed: int = 3, held_out: bool = True, **kw):
    x, y = images()
    held = (x[:4], y[:4], np.ones(4, np.float32)) if held_out else None
    return train_member((x, y, weights), held, 2, SIZE, HP, seed=seed, verbose=0, **kw)


def test_history_has_train_and_held_out_curves_per_epoch():
    epochs = []
    _, history = train(np.ones(16, np.float32), on_epoch=lambda e, logs: epochs.append(e))
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history)
    assert all(len(history[k]) == HP.epochs for k in ("loss", "val_loss"))
    assert epochs == [0, 1]  # the sink hears every epoch (MLflow's live curves)


def test_without_held_out_data_there_is_no_val_curve():
    _, history = train(np.ones(16, np.float32), held_out=False)
    assert "loss" in history and "val_loss" not in history


def test_training_changes_the_weights_and_returns_two_outputs():
    member, _ = train(np.ones(16, np.float32))
    start = initial_member(3)
    assert not np.allclose(member.get_layer("conv0").kernel, start.get_layer("conv0").kernel)
    logits, fmap = member(images(2)[0][..., None].astype("float32"), training=False)
    assert logits.shape == (2, 2) and fmap.shape == (2, 2, 2, 128)


def test_zero_sample_weights_leave_the_trainable_weights_alone():
    # If the weights were ignored, the loss would be > 0 and the kernels would move.
    member, history = train(np.zeros(16, np.float32))
    assert history["loss"] == [0.0, 0.0]
    start = initial_member(3)
    for name in ("conv0", "conv4", "logits"):
        assert np.allclose(member.get_layer(name).kernel, start.get_layer(name).kernel), name


@pytest.mark.parametrize("favoured", [0, 1])
def test_class_weights_pull_the_bias_towards_the_weighted_class(favoured):
    # Only the favoured class counts in the loss: the gradient of the logit biases is
    # (p - onehot) over those images, so the favoured class's bias can only rise.
    _, y = images()
    member, _ = train((y == favoured).astype(np.float32))
    bias = np.asarray(member.get_layer("logits").bias)
    assert bias[favoured] > bias[1 - favoured]


def test_predict_logits_equals_the_members_logits_in_batches():
    member = initial_member(0)
    x, _ = images(5)
    direct = np.asarray(member(x[..., None].astype("float32"), training=False)[0])
    assert np.allclose(predict_logits(member, x, batch_size=2), direct, atol=1e-5)
    assert predict_logits(member, x[:0]).shape == (0, 2)


def test_training_batches_are_augmented_but_held_out_batches_are_not():
    x, y = images(8)
    w = np.ones(8, np.float32)
    plain = next(iter(make_dataset(x, y, w, 2, 8, seed=0, train=False)))
    augmented = next(iter(make_dataset(x, y, w, 2, 8, seed=0, train=True)))
    assert np.array_equal(plain[0].numpy()[..., 0], x.astype(np.float32))
    assert np.array_equal(plain[1].numpy(), np.eye(2)[y])
    got = augmented[0].numpy()
    assert got.shape == (8, SIZE, SIZE, 1) and got.min() >= 0 and got.max() <= 255
    assert not np.allclose(np.sort(got.ravel()), np.sort(x.astype(np.float32).ravel()))


def test_a_member_can_start_from_a_trained_one():
    """Fine-tuning (lifecycle.retrain): the new member starts with the given weights."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (8, 32, 32)).astype(np.uint8)
    y = np.array([0, 1] * 4)
    w = np.ones(8, np.float32)
    first, _ = train_member((x, y, w), None, 2, 32, HParams(epochs=1, batch_size=4), seed=0,
                            verbose=0)
    tuned, _ = train_member((x, y, w), None, 2, 32, HParams(epochs=0, batch_size=4), seed=5,
                            verbose=0, init=first)
    fresh, _ = train_member((x, y, w), None, 2, 32, HParams(epochs=0, batch_size=4), seed=5,
                            verbose=0)
    same = [np.array_equal(a, b) for a, b in zip(first.get_weights(), tuned.get_weights(),
                                                  strict=True)]
    assert all(same)
    assert not all(np.array_equal(a, b) for a, b in zip(first.get_weights(),
                                                        fresh.get_weights(), strict=True))
