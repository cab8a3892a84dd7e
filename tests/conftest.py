"""Shared fixtures: the real model server (mlflow/serve.sh), the app, a gunicorn process."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Tests import the project (app, training) even when it is not pip-installed.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# A patient-data product sends nothing out, not even from its tests.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

import accounts  # noqa: E402
import helpers  # noqa: E402

OUTPUT = ROOT / "test-output"
# Loading the model on 2 busy CPUs can take minutes; a stuck start must still fail.
MODEL_START_DEADLINE_S = float(os.environ.get("RADIO_TEST_MODEL_START_S", "300"))


def _env(**extra: str) -> dict[str, str]:
    return helpers.server_env(PYTHONPATH=str(ROOT), **extra)


@pytest.fixture(autouse=True)
def _mlflow_target_restored() -> Iterator[None]:
    """After each test, MLflow talks to where it did before (a test pointing it at its own
    server must not leave the next one talking to a server that has stopped)."""
    with helpers.mlflow_target():
        yield


@pytest.fixture(autouse=True, scope="module")
def _mlflow_target_restored_per_module() -> Iterator[None]:
    """After each module: module-scoped fixtures (a training into a scratch registry) run
    before the per-test guard saves the target, so only this one undoes them."""
    with helpers.mlflow_target():
        yield


@pytest.fixture(scope="session")
def model_metrics_port() -> int:
    """The port of the session model server's Prometheus metrics (monitoring/model_host.py)."""
    return helpers.free_port()


@pytest.fixture(scope="session")
def model_server(model_metrics_port: int) -> Iterator[str]:
    """Base URL of the real model server: mlflow/serve.sh on a free port, shipped registry."""
    port = helpers.free_port()
    env = _env(MODEL_SERVER_HOST="127.0.0.1", MODEL_SERVER_PORT=str(port),
               MODEL_SERVER_METRICS_PORT=str(model_metrics_port))
    proc = helpers.start(["bash", "mlflow/serve.sh"], env, OUTPUT / "logs" / "model-server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        helpers.wait_until(f"{url}/ping", proc, MODEL_START_DEADLINE_S, lambda r: r.ok)
        yield url
    finally:
        helpers.stop(proc)


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    """An empty RADIO_DATA_DIR for one test."""
    return tmp_path / "data"


# RADIO_TEST_DB=postgresql runs every app test on a fresh database of a real PostgreSQL
# (default: the SQLite file under each test's data dir).
TEST_DB = os.environ.get("RADIO_TEST_DB", "sqlite")


@pytest.fixture()
def app_database_url(request) -> str:
    """The DATABASE_URL of the apps a test makes: empty (SQLite) or a new PostgreSQL DB."""
    if TEST_DB == "postgresql":
        return request.getfixturevalue("postgres").new_database()
    return ""


@pytest.fixture()
def make_app(data_dir: Path, app_database_url: str):
    """Factory: an app configured with the given overrides on top of a fresh data dir."""
    from app import create_app

    def make(**overrides):
        overrides.setdefault("data_dir", data_dir)
        overrides.setdefault("database_url", app_database_url)
        app = create_app(overrides)
        app.testing = True
        return app

    return make


@pytest.fixture()
def client(make_app, model_server: str):
    """Test client of an app talking to the real model server, as a clinician (API token)."""
    return accounts.bearer_client(make_app(mlflow_url=model_server))


@pytest.fixture()
def offline_client(make_app):
    """Test client (a clinician's API token) of an app whose model server port is closed."""
    return accounts.bearer_client(make_app(mlflow_url=f"http://127.0.0.1:{helpers.free_port()}"))


@pytest.fixture(scope="session")
def gunicorn_app(model_server: str, tmp_path_factory, request) -> Iterator[dict]:
    """The app under a real gunicorn process; yields {"url", "data_dir", "max_mb", "env",
    "auth" (headers with a clinician's token)}."""
    port = helpers.free_port()
    data = tmp_path_factory.mktemp("gunicorn-data")
    database = {}
    if TEST_DB == "postgresql":
        database["DATABASE_URL"] = request.getfixturevalue("postgres").new_database()
    env = _env(PORT=str(port), HOST="127.0.0.1", MLFLOW_URL=model_server,
               RADIO_DATA_DIR=str(data), RADIO_WORKERS="2", RADIO_MAX_UPLOAD_MB="5",
               RADIO_SITE="Test Hospital", **database)
    proc = helpers.start(helpers.gunicorn_cmd(), env, OUTPUT / "logs" / "gunicorn.log")
    url = f"http://127.0.0.1:{port}"
    try:
        helpers.wait_until(f"{url}/health", proc, 60, lambda r: r.ok)
        # The token comes from the CLI, as a script would get it.
        token = accounts.cli_token(env, "gunicorn-clinician", "clinician")
        yield {"url": url, "data_dir": data, "max_mb": 5, "proc": proc, "env": env,
               "auth": {"Authorization": f"Bearer {token}"}}
    finally:
        helpers.stop(proc)


@pytest.fixture(scope="session")
def xray_path() -> Path:
    """A real adult chest X-ray from ../shared/data."""
    path = helpers.first_val_xray()
    if path is None:
        pytest.skip(f"no X-rays in {helpers.SHARED_DATA} (shared data absent from this machine)")
    return path


@pytest.fixture(scope="session")
def bomb_png_bytes() -> bytes:
    """A 20000x20000 PNG decompression bomb (about 50 kB)."""
    return helpers.bomb_png(20000)


# --- the shipped model and the real data, shared by tests/training and tests/mlflow ---

@pytest.fixture(scope="session")
def real_sources() -> list[Path]:
    """Every real source (training.sources) in ../shared/data; skips when absent."""
    from training.sources import missing, source_paths

    paths = source_paths(helpers.SHARED_DATA)
    absent = missing(paths)
    if absent:
        pytest.skip(f"real X-rays not available here ({', '.join(absent)} missing)")
    return paths


@pytest.fixture(scope="session")
def not_chest_xray() -> Path:
    """../shared/not-chest-xray (real negatives for the gate); skips when absent."""
    root = helpers.SHARED_DATA.parent / "not-chest-xray"
    if not (root / "val").is_dir():
        pytest.skip(f"real non-chest-X-ray images not available here ({root} missing)")
    return root


@pytest.fixture(scope="session")
def shipped_model():
    """The production model of the shipped registry (mlflow/), loaded in-process."""
    from training.registry_folder import load_model

    return load_model(ROOT / "mlflow")


@pytest.fixture(scope="session")
def val_set(real_sources, shipped_model):
    """All val X-rays of every source, decoded to the model contract."""
    from training.data import load

    return load(real_sources, "val", classes=shipped_model.classes)


# --- databases: SQLite and a real PostgreSQL ----------------------------------------------

@pytest.fixture(scope="session")
def postgres() -> Iterator:
    """A real PostgreSQL 15 server for the session; skips when Debian's binaries are absent."""
    import pg

    reason = pg.missing_reason()
    if reason:
        pytest.skip(reason)
    server = pg.PostgresServer(helpers.free_port())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path) -> Iterator[str]:
    """An empty database, once as a SQLite file and once on the real PostgreSQL."""
    from app.store import db

    if request.param == "sqlite":
        url = db.default_url(tmp_path / "db")
    else:
        url = request.getfixturevalue("postgres").new_database()
    yield url
    db.dispose_all()


@pytest.fixture
def smtp(tmp_path, monkeypatch):
    """A real STARTTLS SMTP server; the lifecycle's SMTP settings point at it."""
    import smtp_helpers

    controller, box, env = smtp_helpers.start(tmp_path, helpers.free_port())
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    box.env = env
    try:
        yield box
    finally:
        controller.stop()
