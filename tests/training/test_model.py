"""training/model.py: member and ensemble graphs at 32x32 (untrained weights, no data)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training.model import FILTERS, build_ensemble, build_member, classifier

SIZE = 32


def batch(n: int = 3, seed: int = 0) -> np.ndarray:
    """A float batch of uint8-valued images, ``(n, 32, 32, 1)``."""
    rng = np.random.default_rng(seed)
    return rng.integers(20, 120, (n, SIZE, SIZE, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def members() -> list[keras.Model]:
    keras.utils.set_random_seed(0)
    return [build_member(3, SIZE, name=f"fold{i}") for i in range(2)]


@pytest.fixture(scope="module")
def ensemble(members) -> keras.Model:
    return build_ensemble(members, SIZE)


def test_member_outputs_logits_and_the_last_feature_maps(members):
    logits, fmap = members[0](batch(), training=False)
    side = SIZE // 2 ** (len(FILTERS) - 1)  # four poolings
    assert logits.shape == (3, 3) and fmap.shape == (3, side, side, FILTERS[-1])
    assert np.allclose(classifier(members[0])(batch(), training=False), logits)


def test_ensemble_outputs_are_named_and_shaped_for_the_server(ensemble):
    assert ensemble.output_names == ["logits", "cam", "features"]
    logits, cam, feats = ensemble(batch(), training=False)
    assert logits.shape == (3, 3)
    assert cam.shape == (3, 2, 2, 3)
    assert feats.shape == (3, 2 * FILTERS[-1])  # each member's pooled features, concatenated


def test_ensemble_logits_are_the_members_mean(members, ensemble):
    x = batch()
    mean = np.mean([np.asarray(m(x, training=False)[0]) for m in members], axis=0)
    assert np.allclose(ensemble(x, training=False)[0], mean, atol=1e-5)


def test_cam_is_exact_its_spatial_mean_is_the_logit_without_bias():
    # GAP then one linear layer: the logit is the mean over positions of the CAM, plus bias.
    members = [build_member(3, SIZE, name=f"m{i}") for i in range(2)]
    for i, m in enumerate(members):
        m.get_layer("logits").bias.assign(np.array([0.5, -1.0, 2.0 + i], np.float32))
    logits, cam, _ = build_ensemble(members, SIZE)(batch(), training=False)
    bias = np.mean([np.asarray(m.get_layer("logits").bias) for m in members], axis=0)
    assert np.allclose(np.mean(cam, axis=(1, 2)) + bias, logits, atol=1e-4)


@pytest.mark.parametrize("gain,offset", [(2.0, 10.0), (0.5, -5.0), (1.0, 100.0)])
def test_output_ignores_brightness_and_contrast(ensemble, gain, offset):
    # The first layer standardises each image: exposure and detector gain never matter.
    x = batch()
    before = ensemble(x, training=False)
    after = ensemble(gain * x + offset, training=False)
    for a, b, name in zip(before, after, ensemble.output_names, strict=True):
        assert np.allclose(a, b, atol=1e-3), name


def test_but_not_the_content_of_the_image(ensemble):
    x = batch()
    assert not np.allclose(ensemble(x, training=False)[0], ensemble(x[:, ::-1], training=False)[0])


def test_blank_images_give_finite_outputs(ensemble):
    blank = np.full((2, SIZE, SIZE, 1), 128, np.float32)
    assert all(np.isfinite(np.asarray(o)).all() for o in ensemble(blank, training=False))


def test_ensemble_survives_save_and_load(ensemble, tmp_path):
    ensemble.save(tmp_path / "e.keras")
    again = keras.models.load_model(tmp_path / "e.keras")
    x = batch()
    for a, b in zip(ensemble(x, training=False), again(x, training=False), strict=True):
        assert np.allclose(a, b, atol=1e-5)
