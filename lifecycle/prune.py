"""Retention of registered versions: remove the weights of versions nobody will serve again.

    python -m lifecycle prune [--keep-latest N] [--dry-run]

Each version carries its own copy of its weights (~10 MB), so a registry grows by that
with every retraining, repackaging and gate refit. Kept: every version an alias names
(``production``, ``candidate``, ``previous``: what is served, what is about to be, what a
rollback restores) and the ``N`` newest (default 2). Every other version is pruned:

1. its record is copied to its training run first (run tags ``pruned_version``,
   ``pruned_version_tags`` — the version's tags, lineage included, as JSON — and
   ``pruned_at``): runs are never deleted, so what the version was, how it scored and
   where it came from stay queryable;
2. the registered version is deleted, then its logged model (MLflow marks it deleted);
3. the logged model's files are removed through MLflow's artefact repository, so the
   same code empties a local folder and an S3 prefix.

The shipped registry (``mlflow/``) keeps only what a first deploy needs; the weights of
the versions pruned from it stay in git history (docs/model.md, "The registry that ships").
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import chdir, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle import model_versions as reg

DEFAULT_KEEP_LATEST = 2


def plan(cl, name: str, keep_latest: int = DEFAULT_KEEP_LATEST) -> tuple[list[str], list[str]]:
    """``(kept, pruned)`` version numbers of ``name``, newest first."""
    if keep_latest < 0:
        raise ValueError("--keep-latest must be 0 or more")
    found = reg.versions(cl, name)
    kept = [v.version for i, v in enumerate(found) if v.aliases or i < keep_latest]
    return kept, [v.version for v in found if v.version not in kept]


def logged_model_id(mv) -> str | None:
    """The logged model behind a version (the registry may keep it only in the source)."""
    if mv.model_id:
        return mv.model_id
    return mv.source.removeprefix("models:/") if mv.source.startswith("models:/m-") else None


def _tags_json(tags: dict[str, str], limit: int = 7900) -> str:
    """The tags as JSON within one tag value (MLflow's limit is 8000 characters): long
    values (gate reasons) are cut before anything is lost; lineage is kept in every case."""
    for cut in (None, 1000, 200):
        text = json.dumps({k: v if cut is None else v[:cut] for k, v in tags.items()},
                          sort_keys=True)
        if len(text) <= limit:
            return text
    return json.dumps({k: tags[k] for k in reg.LINEAGE if k in tags}, sort_keys=True)


def _record_on_run(cl, mv, stamp: str) -> None:
    if not mv.run_id:
        return
    cl.set_tag(mv.run_id, "pruned_version", f"{mv.name}/{mv.version}")
    cl.set_tag(mv.run_id, "pruned_version_tags", _tags_json(dict(mv.tags)))
    cl.set_tag(mv.run_id, "pruned_at", stamp)


def _remove_files(artifact_location: str) -> None:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    get_artifact_repository(artifact_location).delete_artifacts()
    if "://" not in artifact_location:  # a local folder: its emptied model folder too
        with suppress(OSError):
            Path(artifact_location).parent.rmdir()


def prune(cl, name: str, registry_root: Path, keep_latest: int = DEFAULT_KEEP_LATEST,
          dry_run: bool = False) -> dict[str, Any]:
    """Prune ``name``'s versions beyond the policy; ``{"kept": [...], "pruned": [...]}``.

    ``registry_root``: the folder relative artefact paths start from (a shipped-style
    registry stores them relative to its parent folder).
    """
    kept, pruned = plan(cl, name, keep_latest)
    if dry_run:
        return {"kept": kept, "pruned": pruned, "dry_run": True}
    stamp = reg.today()
    doomed = [cl.get_model_version(name, v) for v in pruned]
    # several versions may share one logged model (a re-registration): files a kept
    # version still uses stay
    in_use = {logged_model_id(cl.get_model_version(name, v)) for v in kept}
    for mv in doomed:
        _record_on_run(cl, mv, stamp)
        cl.delete_model_version(name, mv.version)
    # versions first, files after: a kill in between leaves unused files, never a
    # registered version without its files
    for model_id in sorted({logged_model_id(mv) for mv in doomed} - in_use - {None}):
        location = cl.get_logged_model(model_id).artifact_location
        cl.delete_logged_model(model_id)
        with chdir(registry_root):
            _remove_files(location)
    return {"kept": kept, "pruned": pruned, "dry_run": False}


@dataclass(frozen=True)
class VersionRecord:
    """What is known of a version, registered or pruned: its run and its tags."""

    version: str
    run_id: str
    tags: dict[str, str]
    pruned: bool


def version_record(cl, name: str, version: str) -> VersionRecord | None:
    """``name/version`` from the registry, else from the run it was pruned onto; None if
    neither knows it (what lineage walks, such as the model card's lookup, follow)."""
    from mlflow.exceptions import MlflowException

    try:
        mv = cl.get_model_version(name, str(version))
        return VersionRecord(str(version), mv.run_id or "", dict(mv.tags), False)
    except MlflowException:
        pass
    experiments = [e.experiment_id for e in cl.search_experiments()]
    runs = cl.search_runs(experiments, f"tags.pruned_version = '{name}/{version}'",
                          max_results=1) if experiments else []
    if not runs:
        return None
    run = runs[0]
    tags = json.loads(run.data.tags.get("pruned_version_tags", "{}"))
    return VersionRecord(str(version), run.info.run_id, tags, True)


def compact(tracking_uri: str) -> None:
    """Give a SQLite registry's freed pages back to the file system (no-op otherwise)."""
    if not tracking_uri.startswith("sqlite:///"):
        return
    db = sqlite3.connect(tracking_uri.removeprefix("sqlite:///"))
    try:
        db.execute("VACUUM")
    finally:
        db.close()
