"""The managed registry's database password (mlflow/db_password.py, mlflow/tracking_server.sh):
read from the Secrets Manager secret RDS keeps it in, at start, never written anywhere.

Secrets Manager is AWS (mocked with moto, in process and as moto's server for the shell
script); the database is a real PostgreSQL that accepts the registry's user with its
password only (scram-sha-256), and the registry a real `mlflow server`."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import helpers
import pytest
import requests
from helpers import ROOT

sys.path.insert(0, str(ROOT / "mlflow"))
import db_password  # noqa: E402 - a script beside tracking_server.sh, not a package

pytestmark = pytest.mark.slow
LOGS = ROOT / "test-output" / "logs"
ARN_RE = "arn:aws:secretsmanager:eu-west-3:"


def test_the_region_is_the_secrets_own() -> None:
    assert db_password.region_of(
        "arn:aws:secretsmanager:eu-west-3:123456789012:secret:rds!db-1-AbCdEf") == "eu-west-3"
    for bad in ("", "rds-abc", "arn:aws:s3:::bucket", "arn:aws:secretsmanager::1:secret:x"):
        with pytest.raises(db_password.SecretError, match="not a Secrets Manager secret ARN"):
            db_password.region_of(bad)


def test_the_password_is_read_from_the_secret_and_refused_when_absent() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("secretsmanager", region_name="eu-west-3")
        good = client.create_secret(
            Name="rds!db-1", SecretString=json.dumps({"username": "mlflow",
                                                      "password": "p@ss word:1"}))["ARN"]
        empty = client.create_secret(Name="rds!db-2",
                                     SecretString=json.dumps({"username": "mlflow"}))["ARN"]
        assert good.startswith(ARN_RE)
        assert db_password.password(good) == "p@ss word:1"
        with pytest.raises(db_password.SecretError, match="holds no JSON password"):
            db_password.password(empty)
        with pytest.raises(db_password.SecretError, match="cannot read"):
            db_password.password(good.replace("rds!db-1", "rds!db-9"))


@pytest.fixture(scope="module")
def secrets_manager() -> Iterator[dict[str, str]]:
    """moto's server on loopback: the AWS endpoint the registry's start-up script calls."""
    port = helpers.free_port()
    proc = helpers.start([str(Path(sys.executable).parent / "moto_server"), "-p", str(port)],
                         helpers.server_env(), LOGS / "moto.log")
    url = f"http://127.0.0.1:{port}"
    try:
        helpers.wait_until(f"{url}/moto-api/", proc, 60)
        yield {"AWS_ENDPOINT_URL_SECRETS_MANAGER": url, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing"}
    finally:
        helpers.stop(proc)


@pytest.fixture(scope="module")
def password_only_database() -> Iterator[tuple[str, str]]:
    """A real PostgreSQL where the role ``mlflow`` gets in with its password only; yields
    (the backend URI without any password, the password)."""
    import pg
    import psycopg

    reason = pg.missing_reason()
    if reason:
        pytest.skip(reason)
    server = pg.PostgresServer(helpers.free_port())
    try:
        password = secrets.token_urlsafe(18)
        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=radio dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE ROLE mlflow LOGIN PASSWORD '{password}'")
            conn.execute("CREATE DATABASE registry OWNER mlflow")
        # the role's password is required (the initdb default trusts everyone else)
        hba = server.data / "pg_hba.conf"
        hba.write_text("host all mlflow 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        server._run("pg_ctl", "-D", str(server.data), "-w", "reload")
        yield f"postgresql+psycopg://mlflow@127.0.0.1:{server.port}/registry", password
    finally:
        server.stop()


def _registry_env(tmp_path: Path, backend: str, arn: str, aws: dict[str, str],
                  port: int) -> dict[str, str]:
    env = helpers.server_env(RADIO_REGISTRY_DIR=str(tmp_path / "registry"),
                             RADIO_REGISTRY_PORT=str(port), RADIO_REGISTRY_BACKEND=backend,
                             RADIO_REGISTRY_DB_SECRET=arn,
                             MLFLOW_AUTH_ADMIN_PASSWORD=secrets.token_urlsafe(12), **aws)
    env.pop("PGPASSWORD", None)
    return env


def _secret(aws: dict[str, str], name: str, password: str) -> str:
    import boto3

    client = boto3.client("secretsmanager", region_name="eu-west-3",
                          endpoint_url=aws["AWS_ENDPOINT_URL_SECRETS_MANAGER"],
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    return client.create_secret(Name=name, SecretString=json.dumps(
        {"username": "mlflow", "password": password}))["ARN"]


def test_the_registry_logs_in_with_the_secrets_password_and_keeps_it_off_disk(
        secrets_manager, password_only_database, tmp_path) -> None:
    backend, password = password_only_database
    arn = _secret(secrets_manager, "rds!registry", password)
    port = helpers.free_port()
    env = _registry_env(tmp_path, backend, arn, secrets_manager, port)
    proc = helpers.start(["bash", "mlflow/tracking_server.sh"], env, LOGS / "registry-pg.log")
    url = f"http://127.0.0.1:{port}"
    try:
        helpers.wait_until(f"{url}/health", proc, 240)
        # a write that reaches the database: MLflow's tables were created there as mlflow
        admin = ("admin", env["MLFLOW_AUTH_ADMIN_PASSWORD"])
        made = requests.post(f"{url}/api/2.0/mlflow/registered-models/create",
                             json={"name": "radio-cxr"}, auth=admin, timeout=60)
        assert made.status_code == 200, made.text
    finally:
        helpers.stop(proc)
    import psycopg

    with psycopg.connect(backend.replace("postgresql+psycopg", "postgresql"),
                         password=password) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM registered_models")]
    assert names == ["radio-cxr"]
    # the password is in no file the registry wrote, nor in its log
    for path in [*(tmp_path / "registry").rglob("*"), LOGS / "registry-pg.log"]:
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path


def test_an_unreadable_secret_stops_the_registry_with_the_reason(
        secrets_manager, password_only_database, tmp_path) -> None:
    backend, _ = password_only_database
    arn = _secret(secrets_manager, "rds!other", "not-the-password").replace("rds!other",
                                                                            "rds!absent")
    env = _registry_env(tmp_path, backend, arn, secrets_manager, helpers.free_port())
    done = subprocess.run(["bash", "mlflow/tracking_server.sh"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "error: cannot read the registry database's secret" in done.stderr
    assert "registry on" not in done.stderr  # stopped before the server
