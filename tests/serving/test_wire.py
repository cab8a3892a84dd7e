"""serving/wire.py: the compact /invocations request."""

import json

import numpy as np
import pytest

from serving.preprocessing import IMAGE_SIZE
from serving.wire import build_request, decode_batch, decode_image, encode_image


def test_roundtrip_is_exact_and_compact():
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    body = build_request([arr, arr[::-1]], heatmap=False)
    assert body["params"] == {"heatmap": False}
    back = decode_batch(body["inputs"]["image"])
    assert back.shape == (2, IMAGE_SIZE, IMAGE_SIZE)
    assert np.array_equal(back[0], arr) and np.array_equal(back[1], arr[::-1])
    # base64 of raw uint8: ~4/3 of the pixels, far below a JSON float array
    assert len(json.dumps(body)) < 2 * 4 / 3 * IMAGE_SIZE**2 + 200


@pytest.mark.parametrize("text", ["not base64!!", "QUJD"])
def test_malformed_images_are_refused(text):
    with pytest.raises(ValueError):
        decode_image(text)


def test_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="expected"):
        encode_image(np.zeros((10, 10), np.uint8))
