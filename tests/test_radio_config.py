"""radio_config: the app, the lifecycle, the monitoring jobs and the scheduled jobs read the
same registry, image store and database from the same environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import radio_config

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = f"sqlite:///{ROOT}/mlflow/mlflow.db"

SITE = {
    "MLFLOW_TRACKING_URI": "http://10.0.2.15:5000",
    "RADIO_REGISTRY_ROOT": "/var/lib/radio/registry",
    "RADIO_MODEL_NAME": "radio-site",
    "RADIO_MODEL_ALIAS": "candidate",
    "RADIO_DATA_DIR": "/srv/radio",
    "RADIO_IMAGE_STORE": "s3://radio-images/site-a",
    "DATABASE_URL": "postgresql+psycopg://radio@db.internal/radio",
}


def test_defaults_are_this_checkout_s_registry_and_data_folder():
    w = radio_config.load({})
    assert w.tracking_uri == SHIPPED
    assert w.registry_root == ROOT
    assert (w.model_name, w.model_alias) == ("radio-cxr", "production")
    assert w.data_dir == ROOT / "var" / "data"
    assert w.image_store == ROOT / "var" / "data" / "images" and not w.image_store_is_s3
    assert w.db_url == f"sqlite:///{ROOT}/var/data/radio.db"
    assert w == radio_config.Wiring()


def test_a_site_s_environment():
    w = radio_config.load(SITE)
    assert w.tracking_uri == "http://10.0.2.15:5000"
    assert w.registry_root == Path("/var/lib/radio/registry")
    assert (w.model_name, w.model_alias) == ("radio-site", "candidate")
    assert w.data_dir == Path("/srv/radio")
    assert w.image_store == "s3://radio-images/site-a" and w.image_store_is_s3
    assert w.db_url == "postgresql+psycopg://radio@db.internal/radio"


def test_only_the_data_folder_set_moves_images_and_database_with_it():
    w = radio_config.load({"RADIO_DATA_DIR": "/srv/radio", "RADIO_IMAGE_STORE": "",
                           "DATABASE_URL": ""})
    assert w.image_store == Path("/srv/radio/images")
    assert w.db_url == "sqlite:////srv/radio/radio.db"


def test_the_web_app_reads_the_same_store_and_database():
    from app.platform.config import load_config
    from app.store import images

    cfg = load_config(SITE)
    assert cfg.db_url == "postgresql+psycopg://radio@db.internal/radio"
    assert images.location(cfg) == "s3://radio-images/site-a"
    local = load_config({"RADIO_DATA_DIR": "/srv/radio"})
    assert local.db_url == "sqlite:////srv/radio/radio.db"
    assert images.location(local) == Path("/srv/radio/images")
    assert load_config({}).data_dir == ROOT / "var" / "data"


def test_the_lifecycle_and_its_jobs_read_the_same_registry():
    from lifecycle.settings import load

    s = load(SITE)
    assert s.tracking_uri == "http://10.0.2.15:5000"
    assert s.registry_root == Path("/var/lib/radio/registry")
    assert s.model_name == "radio-site"
    assert load({}).tracking_uri == SHIPPED


def test_the_monitoring_jobs_read_the_same_everything(monkeypatch):
    from monitoring import drift_jobs

    for name, value in SITE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RADIO_MONITORING_DIR", raising=False)
    wiring, reports = drift_jobs._settings()
    assert wiring.tracking_uri == "http://10.0.2.15:5000"
    assert wiring.image_store == "s3://radio-images/site-a"
    assert wiring.db_url == "postgresql+psycopg://radio@db.internal/radio"
    assert (wiring.model_name, wiring.model_alias) == ("radio-site", "candidate")
    assert reports == Path("/srv/radio/monitoring")


def test_mlflow_env_points_mlflow_at_the_registry_then_puts_the_caller_s_back(monkeypatch):
    pytest.importorskip("mlflow", reason="MLflow is the [serve] extra")
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////elsewhere/mlflow.db")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with radio_config.mlflow_env(radio_config.load({"MLFLOW_TRACKING_URI": SHIPPED})):
        client = MlflowClient()
        # an inherited MLFLOW_REGISTRY_URI is not followed: the registry is the runs' place
        assert client.tracking_uri == SHIPPED
        assert client._registry_uri == SHIPPED
    assert os.environ["MLFLOW_REGISTRY_URI"] == "sqlite:////elsewhere/mlflow.db"
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_monitoring_finds_production_where_the_lifecycle_moves_the_alias(monkeypatch):
    """The drift jobs' production model is the version the lifecycle's alias names."""
    pytest.importorskip("mlflow", reason="MLflow is the [serve] extra")
    from lifecycle.model_versions import PRODUCTION, alias_version, client
    from monitoring.drift_jobs import production_model

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    wiring = radio_config.load({})
    version, folder = production_model(wiring)
    assert version == alias_version(client(SHIPPED), "radio-cxr", PRODUCTION)
    assert (folder / "MLmodel").is_file() and folder.is_relative_to(ROOT / "mlflow")
    assert "MLFLOW_TRACKING_URI" not in os.environ
