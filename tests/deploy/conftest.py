"""Fixtures for the deployment tests: none of them needs AWS or the network."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from deploy_helpers import make_self_signed, read_env_file, render_templates


@pytest.fixture(scope="session")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway /opt/radio and /var/lib/radio for units that systemd must find."""
    base = tmp_path_factory.mktemp("host")
    for exe in ("opt/radio/current/.venv/bin/gunicorn", "opt/radio/current/mlflow/serve.sh",
                "opt/radio/current/mlflow/tracking_server.sh",
                "opt/radio/current/.venv/bin/python"):
        path = base / exe
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(0o755)
    (base / "var/lib/radio/registry").mkdir(parents=True)
    return base


@pytest.fixture(scope="session")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for localhost, made by openssl as the role does."""
    return make_self_signed(tmp_path_factory.mktemp("tls"), "localhost")


@pytest.fixture(scope="session")
def rendered(
    tmp_path_factory: pytest.TempPathFactory, fake_root: Path, tls_pair: tuple[Path, Path]
) -> Path:
    """Directory with every template rendered once (radio.conf, app.env, units...)."""
    out = tmp_path_factory.mktemp("render") / "out"
    return render_templates(
        out,
        radio_common_root=str(fake_root / "opt/radio"),
        radio_common_state_dir=str(fake_root / "var/lib/radio"),
        radio_web_nginx_log_dir=str(out.parent / "logs"),
        radio_web_tls_cert=str(tls_pair[0]),
        radio_web_tls_key=str(tls_pair[1]),
    )


@pytest.fixture()
def env_file() -> Callable[[Path], dict[str, str]]:
    """Parser of rendered environment files."""
    return read_env_file
