"""Registry operations of the lifecycle: aliases, deployment tags, lineage, listing.

Aliases (MLflow aliases, never stages):

* ``production``: what the model server serves;
* ``candidate``: the version prepared for deployment (``deploy_tag=production_ready``);
* ``previous``: the production version before the last switch (what a rollback restores).

A version that leaves production is tagged ``archived`` (with the date); one that enters
loses that tag. Lineage tags (set by :mod:`lifecycle.retrain`; older versions may lack
some): ``parent_version`` (the model training started from, ``none`` from scratch),
``dataset_version``, ``dataset_manifest_hash``, ``git_commit``, ``mode``.

Every function takes an ``MlflowClient`` already pointed at the registry
(:func:`client`), so the same code works on a SQLite file and on the host's server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PRODUCTION, CANDIDATE, PREVIOUS = "production", "candidate", "previous"
ALIASES = (PRODUCTION, CANDIDATE, PREVIOUS)
DEPLOY_TAG, READY, DEPLOYED, REFUSED = "deploy_tag", "production_ready", "deployed", "refused"
ARCHIVED = "archived"
LINEAGE = ("parent_version", "dataset_version", "dataset_manifest_hash", "git_commit", "mode")
# Metrics shown in listings: per source and for the union, accuracy, COVID recall and
# non-COVID called COVID, answered and "seen" (training.evaluation names them).
SHOWN_SUFFIXES = ("_accuracy", "_covid_recall", "_non_covid_called_covid")


class LifecycleError(RuntimeError):
    """A lifecycle request that cannot be done; the message is for the operator."""


def client(tracking_uri: str):
    """An ``MlflowClient`` whose tracking and registry URIs are ``tracking_uri``."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def today() -> str:
    """UTC timestamp kept in tags."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def alias_version(cl, name: str, alias: str) -> str | None:
    """The version ``alias`` names, or None when the alias is not set."""
    from mlflow.exceptions import MlflowException

    try:
        return str(cl.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


@dataclass
class VersionInfo:
    """One registered version as the CLI and the admin page show it."""

    version: str
    aliases: list[str]
    tags: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    created: str = ""
    run_id: str = ""

    @property
    def lineage(self) -> dict[str, str]:
        """The lineage tags (``?`` where a version predates them)."""
        return {k: self.tags.get(k, "?") for k in LINEAGE}

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON for ``--json`` and the admin page."""
        return {"version": self.version, "aliases": self.aliases, "lineage": self.lineage,
                "deploy_tag": self.tags.get(DEPLOY_TAG, ""),
                "archived": self.tags.get(ARCHIVED, ""), "metrics": self.metrics,
                "tags": self.tags, "created": self.created, "run_id": self.run_id}


def _shown(all_metrics: dict[str, float]) -> dict[str, float]:
    return dict(sorted((k, v) for k, v in all_metrics.items()
                       if k.startswith("val_") and k.endswith(SHOWN_SUFFIXES)))


def run_metrics(cl, run_ids: list[str]) -> dict[str, dict[str, float]]:
    """The shown metrics of each run (run id -> metrics), in one search: one registry round
    trip for the whole listing, not one per version (the admin page lists them all)."""
    ids = sorted({r for r in run_ids if r})
    if not ids:
        return {}
    experiments = [e.experiment_id for e in cl.search_experiments()]
    if not experiments:
        return {}
    quoted = ", ".join(f"'{r}'" for r in ids)
    runs = cl.search_runs(experiments, f"attributes.run_id IN ({quoted})",
                          max_results=max(len(ids), 1))
    return {run.info.run_id: _shown(run.data.metrics) for run in runs}


def versions(cl, name: str) -> list[VersionInfo]:
    """Every version of ``name``, newest first, with aliases, tags and key metrics."""
    from mlflow.exceptions import MlflowException

    try:
        aliases = cl.get_registered_model(name).aliases  # {alias: version}
    except MlflowException as exc:
        raise LifecycleError(f"no registered model {name!r} in this registry") from exc
    by_version: dict[str, list[str]] = {}
    for alias, v in aliases.items():
        by_version.setdefault(str(v), []).append(alias)
    found = cl.search_model_versions(f"name='{name}'")
    metrics = run_metrics(cl, [mv.run_id or "" for mv in found])
    out = []
    for mv in sorted(found, key=lambda m: int(m.version), reverse=True):
        created = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC)
        out.append(VersionInfo(str(mv.version), sorted(by_version.get(str(mv.version), [])),
                               dict(mv.tags), metrics.get(mv.run_id or "", {}),
                               created.isoformat(timespec="seconds"), mv.run_id or ""))
    return out


def require_version(cl, name: str, version: str) -> None:
    """Raise :class:`LifecycleError` unless ``name/version`` exists."""
    from mlflow.exceptions import MlflowException

    try:
        cl.get_model_version(name, str(version))
    except MlflowException as exc:
        raise LifecycleError(f"{name} has no version {version}") from exc


def prepare(cl, name: str, version: str, by: str) -> None:
    """Mark ``version`` ready for deployment and make it the ``candidate``."""
    require_version(cl, name, version)
    if alias_version(cl, name, PRODUCTION) == str(version):
        raise LifecycleError(f"version {version} is already in production")
    cl.set_model_version_tag(name, str(version), DEPLOY_TAG, READY)
    cl.set_model_version_tag(name, str(version), "prepared_by", by)
    cl.set_registered_model_alias(name, CANDIDATE, str(version))


def switch(cl, name: str, version: str, by: str, how: str, reason: str = "") -> str | None:
    """Point ``production`` at ``version``; the old one becomes ``previous`` and archived.

    ``how`` is ``gate`` (passed the gate), ``forced`` or ``rollback``; kept on the version
    with who, when and why. Returns the version that left production (None if none).
    """
    require_version(cl, name, version)
    version = str(version)
    old = alias_version(cl, name, PRODUCTION)
    if old == version:
        raise LifecycleError(f"version {version} is already in production")
    stamp = today()
    tags = {DEPLOY_TAG: DEPLOYED, "deployed_at": stamp, "deployed_by": by,
            "deployed_how": how}
    if reason:
        tags["promotion_reason"] = f"{stamp[:10]}: {reason}"
    for key, value in tags.items():
        cl.set_model_version_tag(name, version, key, value)
    if ARCHIVED in _tags(cl, name, version):
        cl.delete_model_version_tag(name, version, ARCHIVED)
    # production moves last: a failure before leaves the served version where it was.
    if old is not None:
        cl.set_registered_model_alias(name, PREVIOUS, old)
        cl.set_model_version_tag(name, old, ARCHIVED, stamp)
    cl.set_registered_model_alias(name, PRODUCTION, version)
    if alias_version(cl, name, CANDIDATE) == version:
        cl.delete_registered_model_alias(name, CANDIDATE)
    return old


def _tags(cl, name: str, version: str) -> dict[str, str]:
    return dict(cl.get_model_version(name, str(version)).tags)


def refuse(cl, name: str, version: str, reasons: list[str]) -> None:
    """Keep a gate refusal on the version (the latest one; the event log keeps them all)."""
    cl.set_model_version_tag(name, str(version), DEPLOY_TAG, REFUSED)
    cl.set_model_version_tag(name, str(version), "gate_reasons", "; ".join(reasons)[:4900])


def rollback_target(cl, name: str) -> str:
    """The version a rollback restores (``previous``); error when there is none."""
    prev = alias_version(cl, name, PREVIOUS)
    if prev is None:
        raise LifecycleError(f"{name} has no '{PREVIOUS}' version to roll back to")
    return prev


def ready_candidate(cl, name: str) -> str | None:
    """The ``candidate`` if it is marked ``production_ready`` (the deploy-ready job's input)."""
    cand = alias_version(cl, name, CANDIDATE)
    if cand is None or _tags(cl, name, cand).get(DEPLOY_TAG) != READY:
        return None
    return cand
