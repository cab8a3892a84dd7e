"""The import rule of the serving package, checked in a fresh interpreter.

``serving`` is what the registry stores with each model version and what the model host
runs with the ``[serve]`` extra only: it must import neither ``training`` nor TensorFlow.
"""

import subprocess
import sys

from helpers import ROOT

CHECK = """
import importlib, pkgutil, sys
import serving
for mod in pkgutil.iter_modules(serving.__path__):
    importlib.import_module("serving." + mod.name)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("training", "tensorflow", "keras"))
print(",".join(heavy))
"""


def test_serving_imports_neither_training_nor_tensorflow():
    out = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
