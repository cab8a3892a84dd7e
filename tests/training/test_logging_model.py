"""training/logging_model.py: what the registry carries for serving."""

from __future__ import annotations

import ast
from pathlib import Path

import training
from training.logging_model import SERVING_MODULES, example_image

PACKAGE = Path(training.__file__).parent


def training_imports(module: str) -> set[str]:
    """``training.*`` modules imported by one module of the package (file names)."""
    tree = ast.parse((PACKAGE / module).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("training."):
            found.add(node.module.split(".")[1] + ".py")
        elif isinstance(node, ast.Import):
            found |= {
                a.name.split(".")[1] + ".py" for a in node.names if a.name.startswith("training.")
            }
    return found


def test_serving_modules_are_closed_under_imports():
    todo, seen = ["serving.py"], set()
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += training_imports(module)
    assert seen | {"__init__.py"} == set(SERVING_MODULES)


def test_shipped_registry_carries_only_the_serving_code():
    root = PACKAGE.parent / "mlflow" / "artifacts" / "models"
    for code in root.glob("*/artifacts/code/training"):
        assert {p.name for p in code.glob("*.py")} == set(SERVING_MODULES)


def test_input_example_is_synthetic_and_in_contract():
    img = example_image()
    assert img.shape == (224, 224) and img.dtype.name == "uint8"
    assert (img[:, 0] == img[:, -1]).all() and img[0, 0] < img[-1, 0]
