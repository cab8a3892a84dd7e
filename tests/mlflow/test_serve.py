"""mlflow/: the shipped registry works from any clone path, served by the real MLflow
scoring server (both `mlflow models serve` and the lean launch of serve.sh)."""

from __future__ import annotations

import shutil

import pytest
from helpers import ROOT, ask_model_server, free_port, mlflow_serve_cmd, server_env

from serving.preprocessing import preprocess_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A copy of the project's registry, scripts and serving code in another directory."""
    dest = tmp_path_factory.mktemp("elsewhere") / "radio"
    shutil.copytree(ROOT / "mlflow", dest / "mlflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        ROOT / "serving", dest / "serving", ignore=shutil.ignore_patterns("__pycache__")
    )
    return dest


def env_for(clone) -> dict[str, str]:
    return server_env(PYTHONPATH=str(clone))  # the copy's own code, not the working tree's


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
        cmd = mlflow_serve_cmd(port)
    else:
        env["MODEL_SERVER_PORT"] = str(port)
        cmd = ["bash", str(clone / "mlflow" / "serve.sh")]
    got = ask_model_server(cmd, env, clone, port, image, tmp_path / "serve.log")
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


def test_serve_sh_leaves_no_zombie_under_the_scoring_server(tmp_path):
    from helpers import start, stop, wait_until

    from bench.procs import tree

    port = free_port()
    proc = start(["bash", str(ROOT / "mlflow" / "serve.sh")],
                 server_env(MODEL_SERVER_PORT=str(port)), tmp_path / "serve.log")
    try:
        wait_until(f"http://127.0.0.1:{port}/ping", proc, 180)
        states = {}
        for pid in tree(proc.pid):
            try:  # field 3 of /proc/PID/stat, after the parenthesised command name
                states[pid] = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
        assert "Z" not in states.values(), states
    finally:
        stop(proc)
