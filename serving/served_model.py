"""Which model is served: its registered name, alias and version, set in one place.

The model host (``mlflow/serve.sh``) resolves ``RADIO_MODEL_NAME@RADIO_MODEL_ALIAS`` to a
version once at start with ``python -m serving.served_model resolve`` and exports it as
``RADIO_MODEL_VERSION``; the pyfunc reads the identity back with :func:`identity`, so every
answer names the version that produced it, and the web app learns it from the answers.
Needs MLflow (the ``[serve]`` extra), not ``training``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

MODEL_NAME = os.environ.get("RADIO_MODEL_NAME", "radio-cxr")
ALIAS = os.environ.get("RADIO_MODEL_ALIAS", "production")
UNREGISTERED = "unregistered"


def identity(default_name: str = MODEL_NAME) -> dict[str, str]:
    """``{"name", "version", "alias"}`` of the model this process serves (from serve.sh)."""
    return {
        "name": os.environ.get("RADIO_MODEL_NAME", default_name),
        "version": os.environ.get("RADIO_MODEL_VERSION", UNREGISTERED),
        "alias": os.environ.get("RADIO_MODEL_ALIAS", ALIAS),
    }


def resolve(name: str = MODEL_NAME, alias: str = ALIAS) -> str:
    """Version number that ``name@alias`` points to (uses MLFLOW_TRACKING_URI)."""
    from mlflow import MlflowClient

    return str(MlflowClient().get_model_version_by_alias(name, alias).version)


def _is_local(location: str) -> bool:
    return location.startswith("file://") or "://" not in location and ":/" not in location


def model_path(name: str, version: str) -> Path:
    """Absolute folder of a registered version's pyfunc: read in place from a local store;
    downloaded once from a tracking server's artefact store (``mlflow-artifacts:``, ``s3:``)
    into ``RADIO_MODEL_CACHE`` (default ``$TMPDIR/radio-models``), one folder per version."""
    import shutil
    import tempfile

    import mlflow
    from mlflow import MlflowClient

    source = MlflowClient().get_model_version(name, version).source
    if source.startswith("models:/m-"):
        location = mlflow.get_logged_model(source.removeprefix("models:/")).artifact_location
    else:
        location = source
    if not _is_local(location):
        cache = Path(os.environ.get("RADIO_MODEL_CACHE")
                     or Path(tempfile.gettempdir()) / "radio-models") / name / str(version)
        if not (cache / "MLmodel").is_file():
            partial = cache.with_name(f".{version}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=str(partial))
            inner = next(partial.rglob("MLmodel")).parent
            shutil.rmtree(cache, ignore_errors=True)
            inner.rename(cache)  # complete or absent: a killed download is never served
            shutil.rmtree(partial, ignore_errors=True)
        location = str(cache)
    path = Path(location.removeprefix("file://")).resolve()
    if not (path / "MLmodel").is_file():
        raise FileNotFoundError(f"no MLmodel in {path} for {name} version {version}")
    return path


def main(argv: list[str] | None = None) -> int:
    """``resolve [NAME] [ALIAS] [--path] [--version V]``: print the version (and folder) an
    alias names, or check that version V exists and print its folder."""
    parser = argparse.ArgumentParser(prog="python -m serving.served_model")
    sub = parser.add_subparsers(dest="cmd", required=True)
    res = sub.add_parser("resolve", help="print the version an alias points to")
    res.add_argument("name", nargs="?", default=MODEL_NAME)
    res.add_argument("alias", nargs="?", default=ALIAS)
    res.add_argument("--path", action="store_true", help="also print the model folder")
    res.add_argument("--version", default=None,
                     help="this version instead of the alias's (blue/green: lifecycle.follow)")
    args = parser.parse_args(argv)
    try:
        version = args.version or resolve(args.name, args.alias)
        if args.version:
            from mlflow import MlflowClient

            version = str(MlflowClient().get_model_version(args.name, args.version).version)
        print(f"{version}\t{model_path(args.name, version)}" if args.path else version)
    except Exception as exc:  # noqa: BLE001 - a CLI: one clear line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
