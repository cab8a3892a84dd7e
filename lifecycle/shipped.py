"""Import the registry shipped in git (``mlflow/``) into the registry that lives on the
MLflow host, without ever overwriting what the host made.

    python -m lifecycle import-shipped [--from mlflow] --to URI

``./deploy.sh`` runs it on every deploy (through an SSH tunnel to the host's tracking
server). A shipped version is known on the host by its ``shipped_key`` tag (the logged
model's id, unique across registries): a version the host already has is skipped, so
running it twice changes nothing. A new one is copied whole: a run in the host's
experiment with the shipped run's parameters, metrics and tags, the model's files (and the
run's ``summary.json``, the figures the model-drift job's card falls back on) as its
artefacts, and a registered version carrying the shipped version's tags (lineage) plus
``shipped_version``. Aliases: the host's are never moved; only a host with no
``production`` at all (the first deploy) gets the shipped ``production``.
"""

from __future__ import annotations

from contextlib import chdir
from pathlib import Path
from typing import Any

from lifecycle import model_versions as reg

EXPERIMENT = "radio-cxr"
KEY = "shipped_key"


def _key(mv) -> str:
    """A shipped version's identity across registries: its logged model id, else its run."""
    return mv.source.removeprefix("models:/") if mv.source.startswith("models:/m-") \
        else f"run:{mv.run_id}"


def _host_keys(dst, name: str) -> dict[str, str]:
    return {mv.tags[KEY]: str(mv.version)
            for mv in dst.search_model_versions(f"name='{name}'") if KEY in mv.tags}


def _run_summary(src, mv) -> Path | None:
    """The shipped run's ``summary.json`` (its figures: the model card the model-drift job
    falls back on), downloaded; None when the run has none. Call from the shipped registry's
    parent folder (its artefact paths are relative to it)."""
    from mlflow.exceptions import MlflowException

    if not mv.run_id:
        return None
    try:
        return Path(src.download_artifacts(mv.run_id, "summary.json"))
    except (MlflowException, OSError):
        return None


def _copy_version(src, dst, name: str, mv, model_dir: Path,
                  summary: Path | None = None) -> str:
    """One shipped version into the host: run, artefacts (the model, and the run's
    ``summary.json`` when shipped), registered version; its number."""
    experiment = dst.get_experiment_by_name(EXPERIMENT)
    exp_id = experiment.experiment_id if experiment else dst.create_experiment(EXPERIMENT)
    run_tags: dict[str, str] = {}
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    if mv.run_id:
        shipped_run = src.get_run(mv.run_id)
        run_tags = {k: v for k, v in shipped_run.data.tags.items()
                    if not k.startswith("mlflow.")}
        params, metrics = shipped_run.data.params, shipped_run.data.metrics
    run = dst.create_run(exp_id, tags=run_tags | {"shipped_run_id": mv.run_id or ""},
                         run_name=f"shipped {name} v{mv.version}")
    from mlflow.entities import Metric, Param

    dst.log_batch(run.info.run_id,
                  metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                  params=[Param(k, str(v)[:6000]) for k, v in params.items()])
    dst.log_artifacts(run.info.run_id, str(model_dir), "model")
    if summary is not None:
        dst.log_artifact(run.info.run_id, str(summary))
    dst.set_terminated(run.info.run_id)
    tags = dict(mv.tags) | {KEY: _key(mv), "shipped_version": str(mv.version)}
    new = dst.create_model_version(name, f"{run.info.artifact_uri}/model",
                                   run_id=run.info.run_id, tags=tags)
    return str(new.version)


def import_shipped(shipped: Path, target_uri: str, name: str = "radio-cxr") -> dict[str, Any]:
    """Copy the versions the host lacks; ``{"imported": {shipped: host}, "skipped": [...],
    "production": set-on-host-or-None}``."""
    from mlflow.exceptions import MlflowException

    from serving.served_model import model_path

    shipped = Path(shipped).resolve()
    src_uri = f"sqlite:///{shipped / 'mlflow.db'}"
    src = reg.client(src_uri)
    dst = reg.client(target_uri)
    try:
        dst.get_registered_model(name)
    except MlflowException:
        dst.create_registered_model(name)
    known = _host_keys(dst, name)
    imported, skipped = {}, []
    import mlflow

    for mv in sorted(src.search_model_versions(f"name='{name}'"), key=lambda m: int(m.version)):
        key = _key(mv)
        if key in known:
            skipped.append(str(mv.version))
            continue
        # the shipped registry's artefact paths are relative to its parent folder
        previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        try:
            mlflow.set_tracking_uri(src_uri)
            mlflow.set_registry_uri(src_uri)
            with chdir(shipped.parent):
                folder = model_path(name, str(mv.version))
                summary = _run_summary(src, mv)
        finally:
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])
        imported[str(mv.version)] = known[key] = _copy_version(src, dst, name, mv, folder,
                                                                  summary)
    production = None
    if reg.alias_version(dst, name, reg.PRODUCTION) is None:
        shipped_prod = reg.alias_version(src, name, reg.PRODUCTION)
        if shipped_prod is not None:
            production = known[_key(src.get_model_version(name, shipped_prod))]
            dst.set_registered_model_alias(name, reg.PRODUCTION, production)
    return {"imported": imported, "skipped": skipped, "production": production}
