"""Write the Ansible inventory from ``terraform output -json``."""

from __future__ import annotations

import ipaddress
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIRED_OUTPUTS = ("frontend_public_ip", "mlflow_public_ip", "mlflow_private_ip", "ssh_user")


class InventoryError(Exception):
    """The Terraform outputs cannot describe the two hosts."""


@dataclass(frozen=True)
class Hosts:
    """Addresses of a deployment, as Terraform reports them."""

    frontend_public_ip: str
    mlflow_public_ip: str
    mlflow_private_ip: str
    ssh_user: str
    mlflow_port: int = 8000


def _ip(name: str, value: Any) -> str:
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        raise InventoryError(f"terraform output {name} is {value!r}, not an IPv4 address") from None


def parse_outputs(outputs: Mapping[str, Any]) -> Hosts:
    """Read the hosts from the parsed JSON of ``terraform output -json``.

    Each output is an object with a ``value``; a missing or empty one means nothing
    (or an older configuration) is deployed, and the error says which output it was.
    """
    values: dict[str, Any] = {}
    for name in REQUIRED_OUTPUTS:
        entry = outputs.get(name)
        value = entry.get("value") if isinstance(entry, Mapping) else None
        if value in (None, ""):
            raise InventoryError(
                f"terraform output has no {name}: deploy first (./deploy.sh deploy)"
            )
        values[name] = value
    port_entry = outputs.get("mlflow_port")
    port = port_entry.get("value", 8000) if isinstance(port_entry, Mapping) else 8000
    return Hosts(
        frontend_public_ip=_ip("frontend_public_ip", values["frontend_public_ip"]),
        mlflow_public_ip=_ip("mlflow_public_ip", values["mlflow_public_ip"]),
        mlflow_private_ip=_ip("mlflow_private_ip", values["mlflow_private_ip"]),
        ssh_user=str(values["ssh_user"]),
        mlflow_port=int(port),
    )


def render_inventory(
    hosts: Hosts,
    key_file: Path,
    known_hosts: Path,
    release: str | None = None,
    src_archive: Path | None = None,
) -> str:
    """The INI inventory for both playbooks; values are shell-quoted as Ansible expects."""
    ssh_args = (
        f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={shlex.quote(str(known_hosts))}"
    )
    all_vars = {
        "ansible_user": hosts.ssh_user,
        "ansible_ssh_private_key_file": str(key_file),
        "ansible_ssh_common_args": ssh_args,
        "ansible_python_interpreter": "/usr/bin/python3",
        "radio_mlflow_private_ip": hosts.mlflow_private_ip,
        "radio_mlflow_port": str(hosts.mlflow_port),
    }
    if release:
        all_vars["radio_release"] = release
    if src_archive:
        all_vars["radio_src_archive"] = str(src_archive)
    lines = [
        "# Written by deploy.sh from `terraform output -json`; regenerated on every run.",
        "[frontend]",
        f"radio-frontend ansible_host={hosts.frontend_public_ip}",
        "",
        "[mlflow]",
        f"radio-mlflow ansible_host={hosts.mlflow_public_ip}",
        "",
        "[all:vars]",
        *(f"{key}={shlex.quote(value)}" for key, value in all_vars.items()),
    ]
    return "\n".join(lines) + "\n"


def load_outputs(path: Path) -> Mapping[str, Any]:
    """Parse a saved ``terraform output -json`` (``{}`` when nothing is deployed)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InventoryError(f"{path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise InventoryError(f"{path} is not terraform output JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise InventoryError(f"{path} is not terraform output JSON: expected an object")
    return data
