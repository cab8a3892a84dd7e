"""training/logging_model.py: what the registry carries for serving."""

from __future__ import annotations

from pathlib import Path

import serving
from training.logging_model import example_image, serving_package

PACKAGE = Path(serving.__file__).parent


def test_registry_gets_the_serving_package_itself_without_caches():
    (PACKAGE / "__pycache__").mkdir(exist_ok=True)  # present after any import
    copy = serving_package()
    assert copy.name == "serving"
    assert not list(copy.rglob("__pycache__")) and not list(copy.rglob("*.pyc"))
    shipped = {p.relative_to(PACKAGE): p.read_bytes() for p in PACKAGE.rglob("*.py")}
    copied = {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*.py")}
    assert copied == shipped


def test_input_example_is_synthetic_and_in_contract():
    img = example_image()
    assert img.shape == (224, 224) and img.dtype.name == "uint8"
    assert (img[:, 0] == img[:, -1]).all() and img[0, 0] < img[-1, 0]
