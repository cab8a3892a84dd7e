"""The model host's install: ``pip install .[serve]`` alone (no TensorFlow) serves the
shipped model through ``mlflow/serve.sh``, as the Ansible role installs it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT, ask_model_server, free_port, server_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def serve_venv(tmp_path_factory):
    """A fresh virtualenv with the project and its ``[serve]`` extra only."""
    venv = tmp_path_factory.mktemp("serve") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
           "--disable-pip-version-check"]
    res = subprocess.run([*pip, f"{ROOT}[serve]"], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return venv


def test_serve_extra_has_no_training_stack(serve_venv):
    probe = (
        "import importlib.util as u; "
        "print(','.join(m for m in ('tensorflow', 'keras', 'tf2onnx', 'sklearn', 'matplotlib') "
        "if u.find_spec(m)))"
    )
    out = subprocess.run([str(serve_venv / "bin" / "python"), "-c", probe],
                         capture_output=True, text=True, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_serve_extra_serves_the_production_model(serve_venv, shipped_model, tmp_path):
    rng = np.random.default_rng(1)
    ramp = np.tile(np.linspace(20, 230, 224)[:, None], (1, 224))
    image = np.clip(ramp + rng.normal(0, 25, (224, 224)), 0, 255).astype(np.uint8)
    expected = shipped_model.predict_arrays(image[None])[0]
    port = free_port()
    # server_env puts the project's .venv first on PATH: serve.sh must take RADIO_VENV's.
    env = server_env(RADIO_VENV=str(serve_venv), MODEL_SERVER_PORT=str(port))
    got = ask_model_server(["bash", str(ROOT / "mlflow" / "serve.sh")], env, ROOT, port, image,
                           tmp_path / "serve.log")
    assert got["status"] == expected["status"] and got["label"] == expected["label"]
    assert got["model"]["version"].isdigit()
