"""The scheduled monitoring jobs: ``data_drift_job()`` and ``model_drift_job()``.

Library code, run only through the one jobs entry point: ``python -m lifecycle job
data-drift|model-drift`` (:mod:`lifecycle.jobs`; the systemd timers and Airflow DAGs call
it, and so does an operator by hand); each returns
``{"drift": bool, "summary": str, ...}``, writes its report (``monitoring.reports``) where the
app's admin page and metrics read it, logs it to MLflow when MLFLOW_TRACKING_URI is set, and
raises on a failure (so the scheduler's failure e-mail fires). They run on the frontend
host (the database and the image store are there) with the ``[serve]`` extra (ONNX Runtime,
MLflow's client). Settings (environment, defaults in brackets):

* where the images, the database and the registry are: :mod:`radio_config` (the app's and
  the lifecycle's answer too): DATABASE_URL, RADIO_DATA_DIR, RADIO_IMAGE_STORE;
  RADIO_MONITORING_DIR [<data dir>/monitoring] where reports go;
* MLFLOW_TRACKING_URI, RADIO_MODEL_NAME [radio-cxr], RADIO_MODEL_ALIAS [production]: the
  model whose features are compared and whose card is the yardstick;
* RADIO_DRIFT_REFERENCE: the reference file (``python -m monitoring.reference build``);
  RADIO_DRIFT_DATA: the training sources' folder; when set, the reference is (re)built
  there for the production version whenever it is missing or production moved;
* RADIO_DRIFT_WINDOW_DAYS [7], RADIO_DRIFT_ALPHA [0.05, family-wise over the groups],
  RADIO_DRIFT_MIN_IMAGES [10];
* RADIO_MODEL_DRIFT_DAYS [90], RADIO_MODEL_DRIFT_MIN_CASES [10], RADIO_MODEL_DRIFT_ALPHA
  [0.05, family-wise over groups x metrics], RADIO_MODEL_CARD [the production version's
  ``model_card`` tag, else the figures of its training run or its ancestors', found
  through its lineage tags]: a JSON file
  ``{"accuracy": .., "covid_recall": .., "normals_called_covid": ..}``;
* RADIO_RETRAIN_ON_DRIFT [false] and RADIO_RETRAIN_COMMAND: the optional retraining
  trigger (``monitoring.trigger``); it starts a training, never a promotion.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

import radio_config
from monitoring import drift, model_drift, reports, trigger

log = logging.getLogger("radio.monitoring")


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _settings() -> tuple[radio_config.Wiring, Path]:
    """Where this host's images, database and registry are, and the reports folder."""
    from app.platform.metrics import reports_dir

    wiring = radio_config.load()
    return wiring, reports_dir(wiring.data_dir)


def group_of(site: str, source: dict[str, Any] | None) -> str:
    """The site / source a prediction is judged in: the DICOM institution when known,
    else the site the app records (RADIO_SITE), else "unknown"."""
    institution = (source or {}).get("institution") or ""
    return institution.strip() or (site or "").strip() or "unknown"


def production_model(wiring: radio_config.Wiring) -> tuple[str, Path]:
    """(version, folder) of RADIO_MODEL_NAME@RADIO_MODEL_ALIAS in the wiring's registry."""
    from serving.served_model import model_path, resolve

    with radio_config.mlflow_env(wiring):
        version = resolve(wiring.model_name, wiring.model_alias)
        return version, model_path(wiring.model_name, version)


def _model_input(data: bytes, fmt: str) -> np.ndarray:
    from serving.preprocessing import preprocess

    if fmt == "DICOM":
        from app.intake import dicom

        return dicom.load(data)[1]
    return preprocess(data)


def current_window(cfg: radio_config.Wiring, since: datetime
                   ) -> tuple[list[np.ndarray], list[dict], list[str], list[str | None]]:
    """Model inputs, image statistics, groups and patient keys (the DICOM PatientID's keyed
    hash, ``app.intake.dicom.patient_key``; None where the upload carried none) of the answered
    predictions since ``since`` (images missing from the store are skipped and counted)."""
    from sqlalchemy import select

    from app.store import db, images
    from app.store.db.models import Prediction
    from serving.image_stats import stats_dict

    where = cfg.image_store
    arrays, stats, groups, patients = [], [], [], []
    missing = 0
    with db.session_scope(cfg.db_url) as session:
        rows = session.scalars(select(Prediction).where(
            Prediction.status == "ok", Prediction.created_at >= since)).all()
        for row in rows:
            try:
                image = _model_input(images.load(where, row.image_sha256, row.image_format),
                                     row.image_format)
            except (images.ImageMissing, ValueError):
                missing += 1
                continue
            arrays.append(image)
            stats.append(row.image_stats or stats_dict(image))
            groups.append(group_of(row.site, row.source))
            patients.append((row.source or {}).get("patient") or None)
    if missing:
        log.warning("data drift: %d images of the window are not in the store", missing)
    return arrays, stats, groups, patients


def window_clusters(patients: list[str | None]) -> np.ndarray | None:
    """Permutation units of the window: the patient where its key is known, else the film
    (None when no film has a key: permuted film by film)."""
    if not any(patients):
        return None
    return np.array([f"patient:{p}" if p else f"film:{i}" for i, p in enumerate(patients)])


def data_drift_job() -> dict[str, Any]:
    """Compare the recent window's images with the reference, per group and overall."""
    from monitoring.features import DriftSpace, NetworkFeatures, stats_array
    from monitoring.reference import Reference, current

    cfg, folder = _settings()
    days = float(_env("RADIO_DRIFT_WINDOW_DAYS", "7"))
    alpha = float(_env("RADIO_DRIFT_ALPHA", str(drift.ALPHA)))
    min_images = int(_env("RADIO_DRIFT_MIN_IMAGES", str(drift.MIN_IMAGES)))
    ref_path = os.environ.get("RADIO_DRIFT_REFERENCE")
    if not ref_path:
        raise RuntimeError("RADIO_DRIFT_REFERENCE is not set: build one with "
                           "`python -m monitoring.reference build --out FILE`")
    version, model_dir = production_model(cfg)
    data_root = os.environ.get("RADIO_DRIFT_DATA")
    # With the training data on the host the reference follows production (rebuilt once
    # when the alias moved); without, a stale one is refused.
    reference = (current(ref_path, data_root, model_dir, version) if data_root
                 else Reference.load(ref_path))
    if reference.model_version != version:
        raise RuntimeError(f"the drift reference was built with model version "
                           f"{reference.model_version}; production is {version}: rebuild it")
    since = datetime.now(UTC) - timedelta(days=days)
    arrays, stats, groups, patients = current_window(cfg, since)
    space = DriftSpace.fit(reference.network, reference.stats)
    ref = drift.Window(space.transform(reference.network, reference.stats),
                       reference.sources, reference.patients)
    refs = drift.references(ref)
    keyed = sum(bool(p) for p in patients)
    notes = [f"reference: {len(reference.stats)} training images of "
             f"{len(set(reference.patients))} patients; references: {', '.join(refs)} "
             f"(sources under {drift.MIN_REFERENCE} patients are judged in the mixture)",
             f"window: {len(arrays)} films, {keyed} with a patient key: "
             + ("reference and window permuted by patient" if keyed == len(arrays) and keyed
                else "reference permuted by patient, the window's films without a patient "
                     "key one by one (uploads without a DICOM PatientID)"),
             f"family-wise alpha {alpha} over the groups (Holm); a group is new when every "
             "reference tells it apart (its p-value is the largest over the references)"]
    if len(arrays) >= 2:
        net = NetworkFeatures(model_dir)(np.stack(arrays))
        if net.shape[1] != reference.network.shape[1]:  # built before the job read `embedding`
            raise RuntimeError(f"the drift reference has {reference.network.shape[1]} network "
                               f"features, version {version} gives {net.shape[1]}: rebuild it")
        cur = drift.Window(space.transform(net, stats_array(stats)), np.array(groups),
                           window_clusters(patients))
        results = drift.compare(ref, cur, space.names(), alpha=alpha, min_images=min_images)
    else:
        results = [drift.GroupResult(drift.OVERALL, len(arrays), judged=False)]
    report = reports.new_report(
        "data", drift=any(r.drift for r in results), summary=drift.summary(results),
        model_version=version, window=f"last {days:g} days", alpha=alpha,
        method="each group against every training source and their mixture: MMD at three "
               "widths and per-feature mean shifts, one permutation test (max-T), patients "
               "as permutation units; new = no reference alike (intersection-union); Holm "
               "over groups", groups=drift.as_dicts(results), notes=notes)
    return _finish(report, folder, reports.p_value_figure(report["groups"], alpha))


def validated_cases(cfg: radio_config.Wiring, since: datetime) -> list[model_drift.Case]:
    """Cases since ``since`` whose reviewers agree on a label (``app.clinical.reviews``)."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from app.clinical import reviews
    from app.store import db
    from app.store.db.models import Prediction

    out = []
    with db.session_scope(cfg.db_url) as session:
        rows = session.scalars(
            select(Prediction).where(Prediction.status.in_(("ok", "not_xray")),
                                     Prediction.created_at >= since)
            .options(selectinload(Prediction.reviews))).all()
        for row in rows:
            agreed = reviews.final_label(row)
            if agreed is not None:
                predicted = row.label if row.status == "ok" else None
                out.append(model_drift.Case(group_of(row.site, row.source), predicted, agreed))
    return out


def model_card(name: str, version: str) -> tuple[dict[str, float], str]:
    """(card figures, where they came from), read afresh for whatever version production is:
    RADIO_MODEL_CARD (an operator's file), else the version's own ``model_card`` tag (its
    figures on the promotion gate's held-out images, written when the gate moved the alias
    to it), else the training run of ``version`` or of the version it was repackaged from /
    derived from (lineage tags; said so, since an ancestor's figures may predate a data
    correction)."""
    card_file = os.environ.get("RADIO_MODEL_CARD")
    if card_file:
        return json.loads(Path(card_file).read_text()), card_file
    from mlflow import MlflowClient

    from lifecycle.prune import version_record

    client = MlflowClient()
    own = version_record(client, name, version)
    tagged = (own.tags or {}).get(model_drift.CARD_TAG) if own is not None else None
    if tagged:
        return ({k: float(v) for k, v in json.loads(tagged).items() if k in model_drift.METRICS},
                f"version {version}'s own {model_drift.CARD_TAG} tag (promotion gate)")
    production = version
    seen = set()
    while version and version not in seen and len(seen) < 10:
        seen.add(version)
        # an ancestor may have been pruned from the registry: its run keeps its record
        mv = version_record(client, name, version)
        if mv is None:
            break
        try:
            local = client.download_artifacts(mv.run_id, "summary.json")
            card = model_drift.card_from_summary(json.loads(Path(local).read_text()))
            if card:
                whose = ("" if version == production else
                         f", an ancestor of production version {production}: its figures, "
                         "measured on the data of its time")
                return card, f"run {mv.run_id} (version {version}) summary.json{whose}"
        except Exception:  # noqa: BLE001 - no summary in this run: follow the lineage
            pass
        tags = mv.tags
        version = tags.get("repackaged_from") or tags.get("parent_version") or ""
        if version == "none":
            break
    raise RuntimeError(f"no model card figures for {name} version {version}: set "
                       "RADIO_MODEL_CARD to a JSON file of them")


def model_drift_job() -> dict[str, Any]:
    """Metrics on validated cases with intervals, against the production model's card."""
    cfg, folder = _settings()
    days = float(_env("RADIO_MODEL_DRIFT_DAYS", "90"))
    min_cases = int(_env("RADIO_MODEL_DRIFT_MIN_CASES", str(model_drift.MIN_CASES)))
    version, _ = production_model(cfg)
    with radio_config.mlflow_env(cfg):
        card, card_source = model_card(cfg.model_name, version)
    cases = validated_cases(cfg, datetime.now(UTC) - timedelta(days=days))
    alpha = float(_env("RADIO_MODEL_DRIFT_ALPHA", str(model_drift.ALPHA)))
    results = model_drift.evaluate(cases, card, min_cases, alpha)
    tested = sum(m.p_value is not None for r in results for m in r.metrics.values())
    report = reports.new_report(
        "model", drift=any(r.drift for r in results), summary=model_drift.summary(results),
        model_version=version, window=f"last {days:g} days", card=card, alpha=alpha,
        method="exact one-sided binomial test of each metric of each group against the "
               "model card, Holm over groups x metrics; Wilson 95% intervals shown",
        groups=model_drift.as_dicts(results),
        notes=[f"card figures: {card_source}",
               f"family-wise alpha {alpha} over {tested} group x metric tests (Holm)"])
    return _finish(report, folder, reports.interval_figure(report["groups"]))


def _finish(report: dict[str, Any], folder: Path, figure: str) -> dict[str, Any]:
    paths = reports.write(folder, report, figure)
    report["mlflow_run_id"] = reports.log_to_mlflow(report, paths)
    report["retraining"] = trigger.maybe_retrain(report)
    log.info("%s drift job: %s", report["kind"], report["summary"])
    return report
