"""The MLflow registry Radio ships: logging, registering, aliases, portable paths.

A registry is a folder holding ``mlflow.db`` (SQLite tracking + registry) and
``artifacts/``. Inside the database every artefact path is stored relative to the
folder's parent (the project root for the shipped ``mlflow/``), so the registry works
from any clone path; MLflow is always started from that parent (``mlflow/serve.sh``
does it). While a training run writes, paths are made absolute, then relative again.

Command line::

    python -m training.registry_folder promote NAME VERSION [--alias production]

Reading which version an alias names is :mod:`serving.served_model` (the model host has no
``training``).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from contextlib import contextmanager
from pathlib import Path

from serving.served_model import ALIAS, MODEL_NAME

EXPERIMENT = "radio-cxr"


def tracking_uri(registry: Path) -> str:
    """SQLite tracking URI of a registry folder."""
    return f"sqlite:///{Path(registry).resolve() / 'mlflow.db'}"


def use_registry(registry: Path) -> None:
    """Point MLflow's tracking AND registry URIs at a registry folder.

    Setting only the tracking URI leaves a registry URI set earlier in the process in
    force: aliases would then be read from (or moved in) another registry.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(registry))
    mlflow.set_registry_uri(tracking_uri(registry))


def _rewrite_paths(db: Path, old: str, new: str) -> int:
    """Replace the prefix ``old`` by ``new`` in every text column that starts with it."""
    con = sqlite3.connect(db)
    changed = 0
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            cols = [
                r[1]
                for r in con.execute(f'pragma table_info("{table}")')
                if any(t in (r[2] or "").upper() for t in ("CHAR", "TEXT"))
            ]
            for col in cols:
                changed += con.execute(
                    f'update "{table}" set "{col}" = ? || substr("{col}", ?) '
                    f'where substr("{col}", 1, ?) = ?',
                    (new, len(old) + 1, len(old), old),
                ).rowcount
        con.commit()
    finally:
        con.close()
    return changed


def make_relative(registry: Path) -> int:
    """Store artefact paths relative to the registry's parent folder.

    The MLmodel files' informational ``artifact_path`` lines are made relative too, so no
    file of the shipped registry names the machine it was trained on.
    """
    registry = Path(registry).resolve()
    changed = _rewrite_paths(registry / "mlflow.db", f"file://{registry.parent}/", "")
    changed += _rewrite_paths(registry / "mlflow.db", f"{registry.parent}/", "")
    for mlmodel in (registry / "artifacts").rglob("MLmodel"):
        text = mlmodel.read_text()
        relative = text.replace(f"{registry.parent}/", "")
        if relative != text:
            mlmodel.write_text(relative)
    return changed


def make_absolute(registry: Path) -> int:
    """Inverse of :func:`make_relative`, for the time a run writes to the registry."""
    registry = Path(registry).resolve()
    return _rewrite_paths(registry / "mlflow.db", f"{registry.name}/", f"{registry}/")


def is_server(registry: str | Path) -> bool:
    """Whether ``registry`` names a tracking server (the MLflow host's) rather than a folder."""
    return str(registry).startswith(("http://", "https://"))


@contextmanager
def open_registry(registry: Path | str):
    """Point MLflow at ``registry`` for the duration of a training run, then make it portable.

    ``registry`` may also be a tracking server's URL (``http(s)://``; credentials from
    ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``): the run and the version go
    to the host's registry and its artefact store, with nothing to rewrite.
    """
    import mlflow

    if is_server(registry):
        mlflow.set_tracking_uri(str(registry))
        mlflow.set_registry_uri(str(registry))
        if mlflow.get_experiment_by_name(EXPERIMENT) is None:
            mlflow.create_experiment(EXPERIMENT)
        mlflow.set_experiment(EXPERIMENT)
        yield registry
        return
    registry = Path(registry).resolve()
    registry.mkdir(parents=True, exist_ok=True)
    if (registry / "mlflow.db").exists():
        make_absolute(registry)
    use_registry(registry)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=str(registry / "artifacts"))
    mlflow.set_experiment(EXPERIMENT)
    try:
        yield registry
    finally:
        make_relative(registry)


def load_model(
    registry: Path, name: str = MODEL_NAME, alias: str = ALIAS, version: str | None = None
):
    """The served pyfunc of ``name@alias`` (or ``name/version``) from a registry folder,
    loaded in-process (from the registry's parent: its artefact paths are relative)."""
    from contextlib import chdir

    import mlflow

    registry = Path(registry).resolve()
    use_registry(registry)
    uri = f"models:/{name}/{version}" if version else f"models:/{name}@{alias}"
    with chdir(registry.parent):
        return mlflow.pyfunc.load_model(uri).unwrap_python_model()


def promote(name: str, version: str, alias: str = ALIAS, reason: str | None = None) -> None:
    """Point ``alias`` at ``version`` (MLflow aliases, not the deprecated stages).

    A ``reason`` is kept on the version as ``promotion_reason`` (with the date): a
    promotion a gate did not make by itself must say why, where the registry shows it.
    """
    from datetime import UTC, datetime

    from mlflow import MlflowClient

    client = MlflowClient()
    if reason:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        client.set_model_version_tag(name, str(version), "promotion_reason", f"{stamp}: {reason}")
    client.set_registered_model_alias(name, alias, str(version))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: promote."""
    parser = argparse.ArgumentParser(prog="python -m training.registry_folder")
    sub = parser.add_subparsers(dest="cmd", required=True)
    pro = sub.add_parser("promote", help="point an alias at a version")
    pro.add_argument("name")
    pro.add_argument("version")
    pro.add_argument("--alias", default=ALIAS)
    pro.add_argument("--reason", help="why (kept on the version as promotion_reason)")
    args = parser.parse_args(argv)
    try:
        promote(args.name, args.version, args.alias, args.reason)
        print(f"{args.name}@{args.alias} -> version {args.version}")
    except Exception as exc:  # noqa: BLE001 - a CLI: one clear line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
