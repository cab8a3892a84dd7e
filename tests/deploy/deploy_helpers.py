"""Helpers of the deployment tests (a module of its own: several conftest.py files coexist)."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
VENV_BIN = Path(sys.executable).parent

# Terraform checks for updates on every run unless told not to, and boto3 may ask
# the EC2 metadata address for credentials: neither may leave this machine.
os.environ["CHECKPOINT_DISABLE"] = "1"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

# Values the templates are rendered with; tests compare the output against them.
RENDER_VARS = {
    "radio_mlflow_private_ip": "10.0.1.23",
    "radio_max_upload_mb": 35,
    "radio_web_mlflow_timeout_s": 12,
    "radio_web_listen_ipv6": False,
    "radio_registry_admin_password": "render-test-password",
}
RENDER_VCPUS = [1, 2, 16]


def tool(name: str) -> str | None:
    """Path of a command, looking in this interpreter's venv first (ansible lives there)."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )


def require(name: str) -> str:
    """The command's path, or skip the test saying which command is missing."""
    path = tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed (.ci/deploy-deps.sh installs it)")
    return path


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output, never raising on failure."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 300)
    return subprocess.run(cmd, check=False, **kwargs)


def ansible_env(tmp: Path) -> dict[str, str]:
    """Environment for ansible commands: no user config, no colour, local temp dirs."""
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = dict(os.environ)
    env.update(
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp / "ansible-remote"),
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        ANSIBLE_RETRY_FILES_ENABLED="0",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def render_templates(out: Path, **overrides: object) -> Path:
    """Render every role template into ``out`` with RENDER_VARS plus ``overrides``."""
    playbook = require("ansible-playbook")
    out.mkdir(parents=True, exist_ok=True)
    extra = {
        "radio_repo": str(ROOT),
        "radio_out": str(out),
        "radio_test_vcpus": RENDER_VCPUS,
        # The modules run in this interpreter, not whatever discovery finds.
        "ansible_python_interpreter": sys.executable,
        **RENDER_VARS,
        **overrides,
    }
    result = run(
        [
            playbook,
            "-i",
            "localhost,",
            str(FIXTURES / "render.playbook.yml"),
            "-e",
            json.dumps(extra),
        ],
        env=ansible_env(out.parent),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of a systemd EnvironmentFile (comments skipped)."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def make_self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """(certificate, key) for ``name``, made with the openssl arguments the role uses."""
    openssl = require("openssl")
    cert, key = directory / "server.crt", directory / "server.key"
    result = run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
            "-keyout", str(key), "-out", str(cert),
        ]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return cert, key


def parse_unit(path: Path) -> configparser.ConfigParser:
    """A rendered systemd unit as sections of keys (case kept: systemd's keys are)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser
