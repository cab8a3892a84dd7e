"""monitoring/drift_jobs.py end to end: ``data_drift_job()`` on a real app database and image
store, with a reference built from the real training images and the shipped production
model (../shared/data and mlflow/; skipped when the data are absent).

The window is what the app recorded: predictions stored by the app's own code
(``app.clinical.predict._keep`` and ``_record_in_db``: the image store and the prediction
row), at two sites ("DICOM institutions"): the same 40 validation films of random
patients, one each, as they are at one site and inverted at the other. Rows outside the window,
refused uploads and images gone from the store must not count. The shipped registry is
read through a copy of its database, so the run the job logs never touches mlflow/.
"""

from __future__ import annotations

import io
import json
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from tests_paths import ROOT

SITES = ("Hospital A", "Hospital B")  # B: the same films, inverted
FILMS = 40


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _films(real_sources) -> list[bytes]:
    """PNG bytes of FILMS validation films, one per patient, of patients drawn at random
    (seeded) from every source: a site whose patients are like the training mixture's.
    (The first films by path would be covid19-3class's COVID adults and child normals
    only: a mix no training source has, rightly called new.)"""
    from training.data import list_samples

    first: dict[tuple[str, str], object] = {}
    for sample in sorted(list_samples(real_sources, "val"), key=lambda s: str(s.path)):
        first.setdefault((sample.source, sample.patient), sample)
    if len(first) < FILMS:
        pytest.skip(f"fewer than {FILMS} validation patients in the real data")
    keys = sorted(first)
    chosen = np.random.default_rng(0).choice(len(keys), FILMS, replace=False)
    return [_png(Image.open(first[keys[i]].path).convert("L")) for i in sorted(chosen)]


@pytest.fixture(scope="module")
def reference_file(real_sources, shipped_production, tmp_path_factory) -> tuple[Path, str]:
    """The reference the operator builds (``python -m monitoring.reference build``): the
    training images' features with the production model; (file, model version)."""
    from monitoring.reference import build

    version, folder = shipped_production
    path = tmp_path_factory.mktemp("reference") / "reference.npz"
    build(real_sources[0].parent, folder, version).save(path)
    return path, version


@pytest.fixture()
def job_env(monkeypatch, tmp_path, data_dir):
    """The job's settings, as on the frontend: the app's data dir (SQLite database, image
    store), the reference, and a tracking server (a copy of the shipped registry's
    database, whose model paths are relative to the project root)."""
    registry = tmp_path / "mlflow.db"
    shutil.copy(ROOT / "mlflow" / "mlflow.db", registry)
    uri = f"sqlite:///{registry}"
    monkeypatch.chdir(ROOT)
    for name, value in (("MLFLOW_TRACKING_URI", uri), ("MLFLOW_REGISTRY_URI", uri),
                        ("RADIO_DATA_DIR", str(data_dir))):
        monkeypatch.setenv(name, value)
    for name in ("DATABASE_URL", "RADIO_IMAGE_STORE", "RADIO_MONITORING_DIR",
                 "RADIO_RETRAIN_ON_DRIFT", "RADIO_DRIFT_WINDOW_DAYS", "RADIO_DRIFT_REFERENCE"):
        monkeypatch.delenv(name, raising=False)
    # The job's runs go to a folder of this test, not to the project's mlruns/.
    from mlflow import MlflowClient

    MlflowClient(uri).create_experiment("radio-monitoring",
                                        artifact_location=(tmp_path / "runs").as_uri())
    return uri


def _record(app, data: bytes, institution: str, status: str = "ok") -> str:
    """One analysed upload stored the way /predict stores it; its request id."""
    from app.clinical.predict import _keep, _record_in_db
    from app.intake.intake import Intake
    from serving.preprocessing import preprocess, sniff_format

    request_id = uuid.uuid4().hex
    result = {"status": status, "label": "Normal" if status == "ok" else None,
              "confidence": 0.9 if status == "ok" else None,
              "model": {"name": "radio-cxr", "version": "3"}}
    cfg = app.config["RADIO"]
    item = Intake(data, sniff_format(data), preprocess(data), {"institution": institution})
    with app.test_request_context("/predict", method="POST"):
        kept = _keep(cfg, item, request_id)
        _record_in_db(cfg, request_id, kept, item, result=result)
    return request_id


def _age(app, request_id: str, days: float) -> None:
    from app.store.db import web as dbweb
    from app.store.db.models import Prediction

    with app.app_context():
        session = dbweb.session()
        row = session.get(Prediction, request_id)
        row.created_at = row.created_at - timedelta(days=days)
        session.commit()


@pytest.mark.slow
def test_data_drift_job_flags_the_drifted_site_only(make_app, data_dir, job_env, real_sources,
                                                    reference_file, monkeypatch,
                                                    shipped_production):
    from mlflow import MlflowClient

    from app.platform.metrics import ReportCollector
    from app.store import images
    from monitoring.drift_jobs import data_drift_job

    monkeypatch.setenv("RADIO_DRIFT_REFERENCE", str(reference_file[0]))
    app = make_app(data_dir=data_dir)
    films = _films(real_sources)
    inverted = [_png(ImageOps.invert(Image.open(io.BytesIO(f)))) for f in films]
    for film, flipped in zip(films, inverted, strict=True):
        _record(app, film, SITES[0])
        _record(app, flipped, SITES[1])
    # Outside the window (a month old), refused, or with the image gone: never counted.
    for film in inverted[:12]:
        _age(app, _record(app, film, "Last month"), days=30)
    for film in inverted[:12]:
        _record(app, film, "Refused", status="not_xray")
    gone = _png(ImageOps.invert(Image.open(io.BytesIO(films[0])).rotate(90)))
    gone_id = _record(app, gone, "Gone")
    with app.app_context():
        from app.store.db import web as dbweb
        from app.store.db.models import Prediction

        row = dbweb.session().get(Prediction, gone_id)
        cfg = app.config["RADIO"]
        (Path(images.location(cfg)) / images._name(row.image_sha256, row.image_format)).unlink()

    report = data_drift_job()

    groups = {g["group"]: g for g in report["groups"]}
    print({g: (v["resembles"], v["p_by_reference"]) for g, v in groups.items()})
    assert set(groups) == {"overall", *SITES}
    assert [groups[s]["n"] for s in ("overall", *SITES)] == [2 * FILMS, FILMS, FILMS]
    assert report["drift"] is True
    assert groups["Hospital B"]["drift"] and groups["Hospital B"]["p_value"] <= 0.05
    assert groups["Hospital B"]["moved"], "a drifted group names the features that moved"
    assert not groups["Hospital A"]["drift"] and groups["Hospital A"]["judged"]
    assert groups["Hospital A"]["p_value"] > 0.05
    # PNG uploads carry no patient key: the window was permuted film by film, and said so.
    assert groups["Hospital A"]["permuted"] == "films"
    assert "without a patient key one by one" in " ".join(report["notes"])
    assert set(groups["Hospital B"]["p_by_reference"]) == {
        "covid19-3class", "hannover-covid", "nih-adult-abnormal", "nih-adult-normal",
        "mixture"}  # ieee8023-adult's 17 training patients: judged inside the mixture
    # Features of the production version.
    assert report["model_version"] == shipped_production[0]
    print(f"data drift job: {report['summary']}")

    # Where the admin page and Prometheus read it ...
    folder = data_dir / "monitoring"
    written = json.loads((folder / "latest-data-drift.json").read_text())
    assert written["groups"] == report["groups"] and written["drift"] is True
    assert "Hospital B" in (folder / "latest-data-drift.html").read_text()
    gauges = {(m.name, s.labels.get("group")): s.value
              for m in ReportCollector(data_dir).collect() for s in m.samples}
    assert gauges[("radio_data_drift_detected", "Hospital B")] == 1.0
    assert gauges[("radio_data_drift_detected", "Hospital A")] == 0.0
    # ... and in MLflow, with the figures and files.
    client = MlflowClient(job_env)
    run = client.get_run(report["mlflow_run_id"])
    assert run.data.tags["drift"] == "true" and run.data.tags["kind"] == "data"
    assert run.data.metrics["p_value.Hospital_B"] == pytest.approx(groups["Hospital B"]["p_value"])
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"latest-data-drift.json", "latest-data-drift.html"} <= names
    assert report["retraining"] == "off"  # the trigger is off by default: nothing started


def test_data_drift_job_refuses_a_reference_of_another_model_version(
    make_app, data_dir, job_env, tmp_path, monkeypatch, capsys, shipped_production
):
    """Features of another version live in another space: the job refuses, loudly."""
    from lifecycle.cli import main
    from monitoring.drift_jobs import data_drift_job
    from monitoring.reference import Reference

    make_app(data_dir=data_dir)
    rng = np.random.default_rng(0)
    other = tmp_path / "other.npz"
    Reference(rng.normal(size=(20, 8)), rng.normal(size=(20, 7)), np.array(["a"] * 20),
              np.array([f"a/{i}" for i in range(20)]), "999").save(other)
    monkeypatch.setenv("RADIO_DRIFT_REFERENCE", str(other))
    production = shipped_production[0]
    with pytest.raises(RuntimeError, match=rf"version 999.*production is {production}: rebuild"):
        data_drift_job()
    # By hand, through the one jobs entry point (python -m lifecycle job data-drift): the
    # job's result names the reason, exit status 1.
    monkeypatch.setenv("RADIO_LIFECYCLE_LOG", str(tmp_path / "events.jsonl"))
    assert main(["job", "data-drift"]) == 1
    assert "rebuild it" in capsys.readouterr().out
    monkeypatch.delenv("RADIO_DRIFT_REFERENCE")
    with pytest.raises(RuntimeError, match="RADIO_DRIFT_REFERENCE is not set"):
        data_drift_job()
    assert not (data_dir / "monitoring" / "latest-data-drift.json").exists()


@pytest.mark.slow
def test_data_drift_job_refuses_a_reference_of_another_width(
    make_app, data_dir, job_env, tmp_path, monkeypatch, real_sources, shipped_production
):
    """A reference of the production version built before the job read the graph's
    ``embedding`` (version 10's 160 ``features``) is not comparable: refused, not crashed."""
    from monitoring.drift_jobs import data_drift_job
    from monitoring.reference import Reference

    app = make_app(data_dir=data_dir)
    for film in _films(real_sources)[:2]:
        _record(app, film, SITES[0])
    rng = np.random.default_rng(0)
    old = tmp_path / "old.npz"
    Reference(rng.normal(size=(30, 160)), rng.normal(size=(30, 7)), np.array(["a"] * 30),
              np.array([f"a/{i}" for i in range(30)]), shipped_production[0]).save(old)
    monkeypatch.setenv("RADIO_DRIFT_REFERENCE", str(old))
    with pytest.raises(RuntimeError, match=r"has 160 network features, version .* gives "
                                           r"1280: rebuild it"):
        data_drift_job()


@pytest.mark.slow
def test_reference_file_keeps_what_the_job_needs(reference_file) -> None:
    from monitoring.reference import Reference

    ref = Reference.load(reference_file[0])
    assert ref.model_version == reference_file[1]
    assert len(ref.network) == len(ref.stats) == len(ref.sources) == len(ref.patients)
    assert np.isfinite(ref.network).all() and np.isfinite(ref.stats).all()
    assert len(set(ref.sources)) >= 2 and len(set(ref.patients)) < len(ref.patients)


@pytest.mark.slow
def test_the_reference_follows_production_when_the_data_are_on_the_host(
        real_sources, shipped_production, tmp_path) -> None:
    """With the training data placed (RADIO_DRIFT_DATA), a reference built for another version
    is rebuilt for production's, once: the next run reuses the file."""
    from sources_subset import copy_subset

    from monitoring.reference import Reference, current

    version, folder = shipped_production
    data = copy_subset(real_sources, tmp_path / "data")
    path = tmp_path / "monitoring" / "drift-reference.npz"
    path.parent.mkdir()
    rng = np.random.default_rng(0)
    Reference(rng.normal(size=(4, 8)), rng.normal(size=(4, 7)), np.array(["a"] * 4),
              np.array([f"a/{i}" for i in range(4)]), "999").save(path)
    ref = current(path, data, folder, version)
    assert ref.model_version == version
    # 2 train films of each class folder of each source, with their source and patient
    assert len(ref.stats) == len(ref.network) == sum(
        min(2, len(list(c.iterdir()))) for s in real_sources for c in (s / "train").iterdir()
        if c.is_dir())
    assert set(ref.sources) == {s.name for s in real_sources}
    assert Reference.load(path).model_version == version
    assert [p.name for p in path.parent.iterdir()] == ["drift-reference.npz"]
    built = path.stat().st_mtime_ns
    assert current(path, data, folder, version).model_version == version
    assert path.stat().st_mtime_ns == built  # kept, not rebuilt
