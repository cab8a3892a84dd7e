"""Rendered systemd units and environment files of both services."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from deploy_helpers import RENDER_VARS, RENDER_VCPUS, ROOT, parse_unit, require, run

UNITS = ("radio-web.service", "radio-model.service", "radio-registry.service",
         "radio-model-proxy.path", "radio-model-proxy.service")


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_analyze_verify(rendered: Path, unit: str) -> None:
    analyze = require("systemd-analyze")
    result = run([analyze, "verify", str(rendered / unit)])
    output = result.stdout + result.stderr
    if "Failed to initialize manager" in output or "Failed to setup" in output:
        pytest.skip(f"systemd-analyze cannot run in this environment: {output.strip()[:200]}")
    assert result.returncode == 0, output
    # Unknown or misspelt keys are only warnings: treat them as failures here.
    assert "Unknown key" not in output and "ignoring" not in output, output


def test_verify_catches_a_missing_executable(rendered: Path, tmp_path: Path) -> None:
    """Guards the check above: verify must really resolve ExecStart."""
    analyze = require("systemd-analyze")
    broken = tmp_path / "radio-web.service"
    text = (rendered / "radio-web.service").read_text()
    broken.write_text(re.sub(r"ExecStart=\S+", "ExecStart=/nonexistent/gunicorn", text))
    result = run([analyze, "verify", str(broken)])
    assert result.returncode != 0
    assert "/nonexistent/gunicorn" in result.stdout + result.stderr


def test_web_unit(rendered: Path, fake_root: Path) -> None:
    unit = parse_unit(rendered / "radio-web.service")
    service = unit["Service"]
    assert service["User"] == "radio" and service["Group"] == "radio"
    assert service["EnvironmentFile"] == "/etc/radio/app.env"
    src = fake_root / "opt/radio/current"
    assert service["ExecStart"] == (
        f"{src}/.venv/bin/gunicorn --config {src}/app/platform/gunicorn.conf.py "
        "app.platform.wsgi:app"
    )
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ReadWritePaths"] == str(fake_root / "var/lib/radio")
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # prometheus_client's multiprocess files: in the unit's own runtime directory, which
    # ProtectSystem=strict leaves writable and systemd empties at every stop.
    assert service["RuntimeDirectory"] == "radio-web"
    assert service["RuntimeDirectoryMode"] == "0700"
    assert service["Environment"] == "PROMETHEUS_MULTIPROC_DIR=/run/radio-web/metrics"


def test_app_metrics_settings(rendered: Path, env_file) -> None:
    """What app/platform/gunicorn.conf.py reads: the multiprocess folder (the unit's, above:
    never in the environment file that app.accounts.users and the monitoring jobs also read)
    and the master's
    metrics on loopback (the local Prometheus scrapes it)."""
    env = env_file(rendered / "app.env")
    assert "PROMETHEUS_MULTIPROC_DIR" not in env
    assert (env["RADIO_METRICS_HOST"], env["RADIO_METRICS_PORT"]) == ("127.0.0.1", "9101")
    conf = (Path(__file__).resolve().parents[2] / "app" / "platform"
            / "gunicorn.conf.py").read_text()
    for key in ("PROMETHEUS_MULTIPROC_DIR", "RADIO_METRICS_HOST", "RADIO_METRICS_PORT"):
        assert key in conf, key


def test_model_unit_runs_the_follower(rendered: Path, fake_root: Path) -> None:
    unit = parse_unit(rendered / "radio-model.service")
    service = unit["Service"]
    assert service["User"] == "radio"
    assert service["ExecStart"] == (
        f"{fake_root}/opt/radio/current/.venv/bin/python -m lifecycle.follow")
    assert service["WorkingDirectory"] == str(fake_root / "opt/radio/current")
    assert service["EnvironmentFile"] == "/etc/radio/model.env"
    assert "radio-registry.service" in unit["Unit"]["After"]


def test_registry_unit_and_env(rendered: Path, env_file, fake_root: Path) -> None:
    service = parse_unit(rendered / "radio-registry.service")["Service"]
    assert service["User"] == "radio" and service["NoNewPrivileges"] == "yes"
    assert service["ExecStart"] == f"{fake_root}/opt/radio/current/mlflow/tracking_server.sh"
    env = env_file(rendered / "registry.env")
    # loopback only, on the data volume, password from deploy.sh; SQLite and volume by default
    assert env["RADIO_REGISTRY_HOST"] == "127.0.0.1"
    assert env["RADIO_REGISTRY_DIR"] == str(fake_root / "var/lib/radio/registry")
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == "render-test-password"
    assert "RADIO_REGISTRY_BACKEND" not in env and "RADIO_REGISTRY_ARTIFACTS" not in env
    registry_sh = (Path(__file__).resolve().parents[2] / "mlflow"
                   / "tracking_server.sh").read_text()
    for key in env:
        if key.startswith("RADIO_REGISTRY"):
            assert key in registry_sh, key


def test_proxy_reload_is_a_root_path_unit(rendered: Path, env_file, fake_root: Path) -> None:
    path = parse_unit(rendered / "radio-model-proxy.path")
    upstream = env_file(rendered / "model.env")["RADIO_FOLLOW_UPSTREAM"]
    assert path["Path"]["PathChanged"] == upstream
    assert path["Path"]["Unit"] == "radio-model-proxy.service"
    assert "User" not in parse_unit(rendered / "radio-model-proxy.service")["Service"]
    site = (rendered / "radio-model.conf").read_text()
    assert f"include {upstream};" in site and "listen 0.0.0.0:8000;" in site


def test_app_env(rendered: Path, env_file, fake_root: Path) -> None:
    env = env_file(rendered / "app.env")
    assert env["MLFLOW_URL"] == f"http://{RENDER_VARS['radio_mlflow_private_ip']}:8000"
    assert env["MLFLOW_TIMEOUT_S"] == str(RENDER_VARS["radio_web_mlflow_timeout_s"])
    assert env["RADIO_DATA_DIR"] == str(fake_root / "var/lib/radio")
    assert (env["HOST"], env["PORT"]) == ("127.0.0.1", "8080")
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true" and env["DO_NOT_TRACK"] == "true"
    # Workers from this machine's facts: 2 * vCPUs + 1, never above the cap of 8.
    assert 3 <= int(env["RADIO_WORKERS"]) <= 8
    # The admin page, retraining and the drift jobs (whose units read app.env) use the one
    # registry on the MLflow host's private address, logged in; not the release tree's SQLite.
    assert env["MLFLOW_TRACKING_URI"] == "http://10.0.1.23:5000"
    assert env["MLFLOW_TRACKING_USERNAME"] == "admin"
    assert env["MLFLOW_TRACKING_PASSWORD"] == "render-test-password"
    assert env["RADIO_DRIFT_REFERENCE"] == str(
        fake_root / "var/lib/radio/monitoring/drift-reference.npz")
    assert env["RADIO_LIFECYCLE_LOG"] == str(fake_root / "var/lib/radio/lifecycle/events.jsonl")
    assert "RADIO_DRIFT_DATA" not in env  # no data archive placed


def test_placed_data_reach_the_gate_and_the_drift_reference(
        tmp_path: Path, fake_root: Path, tls_pair, env_file) -> None:
    """With radio_data_archive (deploy.sh's packed sources) the MLflow host's gate reads each
    source's val split and the frontend's drift reference their train split, unpacked under
    the state directory; the inventory's registry address wins over the derived one."""
    from deploy_helpers import render_templates

    out = render_templates(
        tmp_path / "out", radio_common_root=str(fake_root / "opt/radio"),
        radio_common_state_dir="/var/lib/radio",
        radio_web_nginx_log_dir=str(tmp_path / "logs"), radio_web_tls_cert=str(tls_pair[0]),
        radio_web_tls_key=str(tls_pair[1]), radio_data_archive="/tmp/data.tar.gz",
        radio_registry_private_url="http://172.31.20.5:5000")
    gate = env_file(out / "model.env")["RADIO_GATE_DATA"]
    assert gate.split(":") == [
        "/var/lib/radio/sources/covid19-3class", "/var/lib/radio/sources/nih-adult-normal",
        "/var/lib/radio/sources/hannover-covid", "/var/lib/radio/sources/ieee8023-adult",
        "/var/lib/radio/sources/nih-adult-abnormal"]
    app = env_file(out / "app.env")
    assert app["RADIO_DRIFT_DATA"] == "/var/lib/radio/sources"
    assert app["MLFLOW_TRACKING_URI"] == "http://172.31.20.5:5000"


def test_the_roles_place_every_source_training_knows() -> None:
    """The folders the role checks for are the sources training and the gate read."""
    import yaml

    from training.sources import SOURCES

    defaults = yaml.safe_load((ROOT / "roles/radio_common/defaults/main.yml").read_text())
    assert tuple(defaults["radio_common_data_sources"]) == SOURCES


@pytest.mark.parametrize(("vcpus", "workers"), [(1, 3), (2, 5), (16, 8)])
def test_gunicorn_workers_follow_the_cpu_count(
    rendered: Path, env_file, vcpus: int, workers: int
) -> None:
    assert vcpus in RENDER_VCPUS
    assert env_file(rendered / f"app-{vcpus}cpu.env")["RADIO_WORKERS"] == str(workers)


def test_model_env(rendered: Path, env_file, fake_root: Path) -> None:
    env = env_file(rendered / "model.env")
    assert env["MODEL_SERVER_HOST"] == "0.0.0.0"
    assert env["MODEL_SERVER_PORT"] == "8000"
    assert env["MODEL_SERVER_WORKERS"] == "1"
    assert env["RADIO_MODEL_ALIAS"] == "production"
    assert env["RADIO_VENV"] == str(fake_root / "opt/radio/current/.venv")
    assert env["TMPDIR"] == str(fake_root / "var/lib/radio/tmp")
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true" and env["DO_NOT_TRACK"] == "true"


def test_model_env_names_what_serve_sh_reads(rendered: Path, env_file) -> None:
    """Every MODEL_SERVER_* / RADIO_* variable we set is one that mlflow/serve.sh or the
    follower (lifecycle/follow.py, lifecycle/settings.py) uses."""
    root = Path(__file__).resolve().parents[2]
    serve = "".join((root / f).read_text() for f in (
        "mlflow/serve.sh", "lifecycle/follow.py", "lifecycle/settings.py",
        "serving/served_model.py"))
    for key in env_file(rendered / "model.env"):
        if key.startswith(("MODEL_SERVER_", "RADIO_")):
            assert key in serve, key


def test_a_scaled_out_model_server_follows_the_mlflow_hosts_registry(
        tmp_path: Path, fake_root: Path, tls_pair, env_file) -> None:
    """deploy/inventory.py's host variables with several model servers: a group server
    follows the MLflow host's registry (no registry unit to wait for); the MLflow host's
    registry listens on the private network."""
    from deploy_helpers import render_templates

    out = render_templates(
        tmp_path / "out", radio_common_root=str(fake_root / "opt/radio"),
        radio_common_state_dir=str(fake_root / "var/lib/radio"),
        radio_web_nginx_log_dir=str(tmp_path / "logs"), radio_web_tls_cert=str(tls_pair[0]),
        radio_web_tls_key=str(tls_pair[1]), radio_registry_url="http://10.0.1.23:5000",
        radio_registry_listen="0.0.0.0")
    env = env_file(out / "model.env")
    assert env["MLFLOW_TRACKING_URI"] == "http://10.0.1.23:5000"
    assert env["MLFLOW_TRACKING_USERNAME"] == "admin"
    unit = parse_unit(out / "radio-model.service")["Unit"]
    assert unit["After"] == "network-online.target" and "radio-registry" not in unit["Wants"]
    assert env_file(out / "registry.env")["RADIO_REGISTRY_HOST"] == "0.0.0.0"


def test_one_model_server_follows_its_own_registry(rendered: Path, env_file) -> None:
    assert env_file(rendered / "model.env")["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
