"""bench/serving.py: the uploads it sends are new bytes each time, the same picture, and
files Radio accepts (named test_bench_serving: tests/serving/ holds the package's tests)."""

from __future__ import annotations

import hashlib

import helpers
import numpy as np
import pytest

from bench.serving import tagged
from serving.preprocessing import preprocess


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_tagged_uploads_are_new_bytes_of_the_same_picture(fmt):
    data = helpers.synthetic_image(fmt)
    first, second = tagged(data, 1), tagged(data, 2)
    assert len({hashlib.sha256(d).hexdigest() for d in (data, first, second)}) == 3
    assert np.array_equal(preprocess(first), preprocess(data))  # the strict checks pass too
    assert np.array_equal(preprocess(second), preprocess(data))
