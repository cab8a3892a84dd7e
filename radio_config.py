"""Which MLflow registry, image store and database a Radio process uses: decided here, once.

The web app (``app.platform.config``, ``app.store.images``, ``app.store.db``), the lifecycle
(``lifecycle.settings``), the monitoring jobs (``monitoring.drift_jobs``) and the scheduled
jobs that run them all read these answers from the same environment, so that two processes
of one host never disagree on where the models, the images or the predictions are.
Standard library only: the app imports it without MLflow, the model host without Flask.

Environment (defaults in brackets):

* ``MLFLOW_TRACKING_URI`` [``sqlite:///<project>/mlflow/mlflow.db``, the shipped
  registry]: the runs AND the model registry. Radio keeps both in one place, so an
  inherited ``MLFLOW_REGISTRY_URI`` is overridden (:func:`mlflow_env`), never followed;
* ``RADIO_REGISTRY_ROOT`` [the project root]: the folder a shipped-style registry's
  relative artefact paths start from;
* ``RADIO_MODEL_NAME`` [radio-cxr], ``RADIO_MODEL_ALIAS`` [production]: the served model;
* ``RADIO_DATA_DIR`` [``<project>/var/data``]: the app's data folder;
* ``RADIO_IMAGE_STORE`` [``<data dir>/images``]: a local folder, or ``s3://bucket/prefix``;
* ``DATABASE_URL`` [``sqlite:///<data dir>/radio.db``]: the app's database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent
SHIPPED_TRACKING_URI = f"sqlite:///{PROJECT_ROOT / 'mlflow' / 'mlflow.db'}"
DEFAULT_DATA_DIR = PROJECT_ROOT / "var" / "data"
MODEL_NAME, MODEL_ALIAS = "radio-cxr", "production"
_MLFLOW_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def database_url(data_dir: str | Path, explicit: str = "") -> str:
    """``DATABASE_URL`` when set, else the SQLite file ``radio.db`` in the data folder."""
    return explicit or f"sqlite:///{Path(data_dir).resolve() / 'radio.db'}"


def image_store(data_dir: str | Path, explicit: str = "") -> str | Path:
    """``RADIO_IMAGE_STORE`` when set (a folder, or ``s3://bucket/prefix``), else the
    ``images`` folder in the data folder."""
    return explicit or Path(data_dir) / "images"


def is_s3(store: str | Path) -> bool:
    """Whether an image store is an S3 bucket (``s3://...``) rather than a local folder."""
    return str(store).startswith("s3://")


@dataclass(frozen=True)
class Wiring:
    """Where one process's models, images and records are; field comments name the
    environment variable."""

    tracking_uri: str = SHIPPED_TRACKING_URI  # MLFLOW_TRACKING_URI (also the model registry)
    registry_root: Path = PROJECT_ROOT  # RADIO_REGISTRY_ROOT
    model_name: str = MODEL_NAME  # RADIO_MODEL_NAME
    model_alias: str = MODEL_ALIAS  # RADIO_MODEL_ALIAS
    data_dir: Path = DEFAULT_DATA_DIR  # RADIO_DATA_DIR
    image_store: str | Path = DEFAULT_DATA_DIR / "images"  # RADIO_IMAGE_STORE
    db_url: str = database_url(DEFAULT_DATA_DIR)  # DATABASE_URL

    @property
    def image_store_is_s3(self) -> bool:
        """Whether the images are in S3 (else in a local folder)."""
        return is_s3(self.image_store)


def load(environ: Mapping[str, str] | None = None) -> Wiring:
    """:class:`Wiring` from ``environ`` (default ``os.environ``); an empty value is unset."""
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("RADIO_DATA_DIR") or DEFAULT_DATA_DIR)
    return Wiring(
        tracking_uri=env.get("MLFLOW_TRACKING_URI") or SHIPPED_TRACKING_URI,
        registry_root=Path(env.get("RADIO_REGISTRY_ROOT") or PROJECT_ROOT),
        model_name=env.get("RADIO_MODEL_NAME") or MODEL_NAME,
        model_alias=env.get("RADIO_MODEL_ALIAS") or MODEL_ALIAS,
        data_dir=data_dir,
        image_store=image_store(data_dir, env.get("RADIO_IMAGE_STORE") or ""),
        db_url=database_url(data_dir, env.get("DATABASE_URL") or ""),
    )


@contextmanager
def mlflow_env(wiring: Wiring) -> Iterator[None]:
    """MLflow's default client (``MlflowClient()``, ``mlflow.artifacts``) pointed at
    ``wiring``'s registry for the block, tracking and registry alike; the environment as it
    was afterwards (so a caller's own MLflow settings do not leak into it or out of it)."""
    saved = {name: os.environ.get(name) for name in _MLFLOW_VARS}
    os.environ.update(dict.fromkeys(_MLFLOW_VARS, wiring.tracking_uri))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
