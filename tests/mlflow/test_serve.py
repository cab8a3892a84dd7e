"""mlflow/: the shipped registry works from any clone path, served by the real MLflow
scoring server (both `mlflow models serve` and the lean launch of serve.sh)."""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest
import requests

from helpers import ROOT, free_port, start, stop, wait_until
from training.preprocessing import preprocess_path
from training.wire import build_request

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A copy of the project's registry, scripts and code in another directory."""
    dest = tmp_path_factory.mktemp("elsewhere") / "radio"
    shutil.copytree(ROOT / "mlflow", dest / "mlflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        ROOT / "training", dest / "training", ignore=shutil.ignore_patterns("__pycache__")
    )
    return dest


def env_for(clone) -> dict[str, str]:
    # in-process tests may have pointed MLflow elsewhere through these variables
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    }
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(clone)  # the copy's own code, not the working tree's
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    return env


def ask(port: int, image: np.ndarray) -> dict:
    r = requests.post(
        f"http://127.0.0.1:{port}/invocations", json=build_request([image]), timeout=60
    )
    assert r.status_code == 200, r.text
    return r.json()["predictions"][0]


@pytest.mark.parametrize("launch", ["mlflow-cli", "serve.sh"])
def test_copy_elsewhere_serves_the_in_process_answer(
    launch, clone, shipped_model, real_sources, tmp_path
):
    image = preprocess_path(sorted((real_sources[2] / "val" / "Covid").iterdir())[0])
    expected = shipped_model.predict_arrays(image[None])[0]
    port = free_port()
    env = env_for(clone)
    if launch == "mlflow-cli":
        env["MLFLOW_TRACKING_URI"] = "sqlite:///mlflow/mlflow.db"
        cmd = [
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/radio-cxr@production",
            "-p",
            str(port),
            "--env-manager",
            "local",
        ]
    else:
        env["MODEL_SERVER_PORT"] = str(port)
        cmd = ["bash", str(clone / "mlflow" / "serve.sh")]
    proc = start(cmd, env, tmp_path / "serve.log", cwd=clone)
    try:
        wait_until(f"http://127.0.0.1:{port}/ping", proc, 180, lambda r: r.ok)
        got = ask(port, image)
    finally:
        stop(proc)
    assert got["label"] == expected["label"]
    for cls, p in expected["probabilities"].items():
        assert abs(got["probabilities"][cls] - p) < 1e-5
    if launch == "serve.sh":  # serve.sh pins the alias and names the version in every answer
        assert got["model"]["version"].isdigit()


def test_serve_sh_fails_clearly_without_the_alias(clone, tmp_path):
    env = env_for(clone) | {
        "RADIO_MODEL_ALIAS": "no-such-alias",
        "MODEL_SERVER_PORT": str(free_port()),
    }
    import subprocess

    res = subprocess.run(
        ["bash", str(clone / "mlflow" / "serve.sh")],
        env=env,
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode != 0
    assert "no-such-alias" in res.stderr
