"""Schemathesis hooks (loaded by test_schemathesis.py through SCHEMATHESIS_HOOKS): upload
bodies that are real images often enough to pass the decoder and reach the model.

Bytes drawn at random are almost never a PNG or a JPEG, so without this hook every fuzzed
upload stops at the format check and the decoder is never exercised. Each body with a
``file`` field is sent either as schemathesis drew it or with a drawn image instead: PNG or
JPEG, greyscale, RGB or 16-bit, 16 to 256 pixels a side (below 32 is refused as too small),
and sometimes truncated or with a few bytes overwritten (damaged files for the decoder).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import schemathesis
from hypothesis import strategies as st
from PIL import Image


@st.composite
def images(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from(["PNG", "JPEG"]))
    modes = ["L", "RGB", "I;16"] if fmt == "PNG" else ["L", "RGB"]
    mode = draw(st.sampled_from(modes))
    width, height = draw(st.integers(16, 256)), draw(st.integers(16, 256))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    elif mode == "RGB":
        img = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
    else:
        img = Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8), "L")
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    data = bytearray(buf.getvalue())
    damage = draw(st.sampled_from(["none", "none", "truncated", "overwritten"]))
    if damage == "truncated":
        data = data[: max(8, int(len(data) * draw(st.floats(0.1, 0.95))))]
    elif damage == "overwritten":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(8, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy:
    if not isinstance(body, dict) or "file" not in body:
        return st.just(body)
    return st.one_of(st.just(body), images().map(lambda data: {**body, "file": data}))
