"""training/crossval.py: folds, out-of-fold logits and the grid choice on tiny sources."""

from __future__ import annotations

import numpy as np
import pytest

from training import crossval, data, sampling
from training.crossval import CVResult, choose_best, cross_validate, grid_search, weighted_nll
from training.fit import HParams, predict_logits

SIZE = 32
HP = HParams(epochs=1, batch_size=8, patience=1)


@pytest.fixture
def toy_train(toy_sources):
    train = data.load(toy_sources, "train", size=SIZE)
    return train, sampling.balanced_weights(train), sampling.patient_folds(train, 2, seed=0)


def test_every_image_is_held_out_exactly_once_and_gets_its_folds_logits(toy_train):
    train, weights, folds = toy_train
    held = np.concatenate([te for _, te in folds])
    assert sorted(held.tolist()) == list(range(len(train.samples)))  # a partition

    epochs = []
    res = cross_validate(
        train, weights, folds, HP, seed=0, size=SIZE, on_epoch=lambda *a: epochs.append(a[:2])
    )
    assert len(res.members) == 2 and list(res.histories) == ["fold0", "fold1"]
    assert epochs == [(0, 0), (1, 0)]  # (fold, epoch) reported for each member
    for f, (_, te) in enumerate(folds):
        # each held-out image's row is its own fold's member's logits, nobody else's
        assert np.allclose(res.oof_logits[te], predict_logits(res.members[f], train.images[te]))
        assert res.fold_loss[f] == pytest.approx(
            weighted_nll(res.oof_logits[te], train.y[te], weights[te])
        )
        hit = np.argmax(res.oof_logits[te], 1) == train.y[te]
        assert res.fold_accuracy[f] == pytest.approx(hit.mean())
    assert res.score == pytest.approx(np.mean(res.fold_loss))


def result(loss: list[float], lr: float) -> CVResult:
    return CVResult(HParams(learning_rate=lr), fold_loss=loss, fold_accuracy=[0.5] * len(loss))


def test_best_is_the_lowest_mean_held_out_loss():
    results = [result([0.9, 0.1], 1e-3), result([0.4, 0.4], 2e-3), result([0.2, 0.8], 3e-3)]
    # means 0.5, 0.4, 0.5: the middle one, whatever its best single fold
    assert choose_best(results).hp.learning_rate == 2e-3
    assert choose_best([result([0.3], 1e-3), result([0.3], 2e-3)]).hp.learning_rate == 1e-3


def test_grid_search_tries_every_setting_in_order_and_keeps_the_best(toy_train, monkeypatch):
    train, weights, folds = toy_train
    losses = {1e-3: 0.7, 2e-3: 0.3, 3e-3: 0.5}
    calls = []

    def fake_cv(train, weights, folds, hp, seed, size, on_epoch, init_members=None):
        calls.append(hp.learning_rate)
        on_epoch(0, 0, {"loss": 1.0})
        return result([losses[hp.learning_rate]] * len(folds), hp.learning_rate)

    monkeypatch.setattr(crossval, "cross_validate", fake_cv)
    grid = [HParams(learning_rate=lr) for lr in losses]
    epochs, settings = [], []
    best, results = grid_search(
        train,
        weights,
        folds,
        grid,
        0,
        SIZE,
        on_epoch=lambda g, f, e, logs: epochs.append(g),
        on_setting=lambda g, r: settings.append((g, r.hp.learning_rate)),
    )
    assert calls == [1e-3, 2e-3, 3e-3] and [r.hp for r in results] == grid
    assert best.hp.learning_rate == 2e-3
    assert epochs == [0, 1, 2] and settings == [(0, 1e-3), (1, 2e-3), (2, 3e-3)]


def test_weighted_nll_counts_each_image_by_its_weight():
    logits = np.log(np.array([[0.5, 0.5], [0.9, 0.1]]))
    y = np.array([0, 0])
    assert weighted_nll(logits, y, np.array([1.0, 0.0])) == pytest.approx(np.log(2))
    assert weighted_nll(logits, y, np.array([0.0, 3.0])) == pytest.approx(-np.log(0.9))
