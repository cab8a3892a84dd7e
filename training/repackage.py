"""Re-register a model version's weights with today's ``serving`` code, then promote it
only if it answers exactly like the version it comes from.

    python -m training.repackage [--registry mlflow] [--version 1] [--data ../shared/data]

Used once to turn version 1 (whose registry copy of the serving code lived under the
package name ``training``) into version 2 (the same weights with the ``serving`` package);
useful again whenever the serving code changes but the weights must not. Steps:

1. copy the artefacts (ONNX, Keras, OOD parameters, meta) of ``NAME/VERSION``;
2. log and register them as a new version in a run tagged with the real git commit, the
   source version as ``parent_version`` and ``repackaged_from``; no alias moves yet;
3. answer every val image of every source with both versions, each in a fresh
   interpreter that loads it from the registry as the model server would (so the old
   version runs its own stored code);
4. move the alias to the new version only when every answer is identical (status, label,
   probabilities, confidence, review flag, OOD score and reason, heatmap). Otherwise the
   new version stays registered, tagged ``equivalence=failed``, and the command fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from training.registry_folder import ALIAS, MODEL_NAME, open_registry, use_registry
from training.sources import source_paths

# Loads NAME/VERSION from the registry in a fresh interpreter and answers the images:
# argv = registry, name, version, images.npy, out.json. The version's stored code comes
# first on sys.path (MLflow's code_paths), as on the model server.
_ANSWER = """
import json, sys
import numpy as np
import mlflow
registry, name, version, images, out = sys.argv[1:]
mlflow.set_tracking_uri(f"sqlite:///{registry}/mlflow.db")
model = mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()
x = np.load(images)
answers = []
for i in range(0, len(x), 64):
    answers += model.predict_arrays(x[i:i + 64], heatmap=True)
json.dump(answers, open(out, "w"))
"""


def answers_of(registry: Path, name: str, version: str, images: np.ndarray) -> list[dict]:
    """Every answer of ``name/version`` (loaded as the server does) to ``images``."""
    registry = Path(registry).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", images)
        out = Path(tmp) / "out.json"
        env = {"PATH": "/usr/bin:/bin", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        proc = subprocess.run(
            [sys.executable, "-c", _ANSWER, str(registry), name, version,
             str(Path(tmp) / "x.npy"), str(out)],
            cwd=registry.parent, env=env, capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{name}/{version} could not answer:\n{proc.stderr[-2000:]}")
        return json.loads(out.read_text())


def differences(old: list[dict], new: list[dict]) -> list[str]:
    """Where two lists of answers differ (the ``model`` field, naming the version, aside)."""
    if len(old) != len(new):
        return [f"{len(old)} answers against {len(new)}"]
    found = []
    for i, (a, b) in enumerate(zip(old, new, strict=True)):
        a, b = dict(a), dict(b)
        a.pop("model", None)
        b.pop("model", None)
        if a != b:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            found.append(f"image {i}: {', '.join(keys)}")
    return found


def _artifact_dir(registry: Path, name: str, version: str) -> Path:
    from contextlib import chdir

    from serving.served_model import model_path

    with chdir(Path(registry).resolve().parent):
        return model_path(name, version) / "artifacts"


def repackage(
    registry: Path, images: np.ndarray, name: str = MODEL_NAME, version: str = "1",
    alias: str = ALIAS,
) -> dict:
    """Steps 1-4 of the module docstring; returns the new version's tags and the check."""
    import mlflow
    from mlflow import MlflowClient

    from training.logging_model import log_and_register
    from training.packaging import artifact_files
    from training.pipeline import git_commit

    registry = Path(registry).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp)
        use_registry(registry)
        source = _artifact_dir(registry, name, version)
        for file in artifact_files(source).values():
            shutil.copy2(source / file, model_dir / file)
        old_tags = MlflowClient().get_model_version(name, version).tags
        with open_registry(registry), mlflow.start_run(run_name=f"repackage {name} v{version}"):
            mlflow.set_tags({"git_commit": git_commit(), "repackaged_from": version})
            info = log_and_register(
                model_dir, artifact_files(model_dir), name,
                old_tags.get("dataset_version", "unknown"), promote=False,
                lineage={"parent_version": version, "mode": "repackage"},
            )
            client = MlflowClient()
            new = info["version"]
            client.set_model_version_tag(name, new, "parent_version", version)
            client.set_model_version_tag(name, new, "repackaged_from", version)
    diffs = differences(
        answers_of(registry, name, version, images), answers_of(registry, name, new, images)
    )
    with open_registry(registry):
        client = MlflowClient()
        client.set_model_version_tag(name, new, "equivalence", "failed" if diffs else "passed")
        client.set_model_version_tag(name, new, "equivalence_images", str(len(images)))
        if not diffs:
            client.set_registered_model_alias(name, alias, new)
    return {**info, "parent_version": version, "images": len(images), "differences": diffs,
            "alias": "" if diffs else alias}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit 1 when the answers differ (alias not moved)."""
    from training import data

    parser = argparse.ArgumentParser(prog="python -m training.repackage")
    parser.add_argument("--registry", type=Path, default=Path("mlflow"))
    parser.add_argument("--name", default=MODEL_NAME)
    parser.add_argument("--version", default="1", help="the version whose weights to repackage")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args(argv)
    val = data.load(source_paths(args.data), "val")
    result = repackage(args.registry, val.images, args.name, args.version)
    print(json.dumps({k: v for k, v in result.items() if k != "differences"}))
    for line in result["differences"][:20]:
        print("differs:", line, file=sys.stderr)
    return 1 if result["differences"] else 0


if __name__ == "__main__":
    sys.exit(main())
