"""Write the Ansible inventory from ``terraform output -json``."""

from __future__ import annotations

import ipaddress
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUIRED_OUTPUTS = ("frontend_public_ip", "ssh_user")
SINGLE_MODEL_OUTPUTS = ("mlflow_public_ip", "mlflow_private_ip")
# The registry's port on the MLflow host (roles/radio_model, model_tier.tf).
REGISTRY_PORT = 5000


class InventoryError(Exception):
    """The Terraform outputs cannot describe the hosts."""


@dataclass(frozen=True)
class Hosts:
    """Addresses of a deployment, as Terraform (and, for a scaled-out tier, EC2) reports them."""

    frontend_public_ip: str
    mlflow_public_ips: tuple[str, ...]
    mlflow_private_ip: str | None
    ssh_user: str
    mlflow_port: int = 8000
    # What the app's MLFLOW_URL points at: the model host or the internal load balancer.
    mlflow_url: str | None = None
    frontend_hostname: str | None = None
    frontend_url: str | None = None
    data_volumes: dict[str, str] = field(default_factory=dict)
    model_asg_name: str | None = None
    # Model servers' ports the frontend's Prometheus scrapes (node_exporter, model_metrics).
    metrics_ports: dict[str, int] = field(default_factory=dict)
    # The registry's managed backend (registry_backend = "managed"), for the MLflow host.
    registry_backend_uri: str | None = None
    registry_artifacts: str | None = None
    # The Secrets Manager secret RDS keeps the managed database's password in.
    registry_db_secret: str | None = None
    # With several model servers: the MLflow host's registry, which they follow.
    registry_url: str | None = None

    @property
    def mlflow_public_ip(self) -> str:
        """The first model server's public address (the only one with one server)."""
        return self.mlflow_public_ips[0]

    @property
    def registry_private_url(self) -> str | None:
        """The one registry on the MLflow host's private address: what the frontend (admin
        page, retraining, drift jobs) and the model servers use; None for a scaled-out state
        from before the MLflow host stayed."""
        if self.registry_url:
            return self.registry_url
        if not self.mlflow_private_ip:
            return None
        return f"http://{self.mlflow_private_ip}:{REGISTRY_PORT}"

    @property
    def app_url(self) -> str:
        """The address users open: Terraform's frontend_url, else HTTP on the IP (older state)."""
        return self.frontend_url or f"http://{self.frontend_public_ip}"


def _ip(name: str, value: Any) -> str:
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        raise InventoryError(f"terraform output {name} is {value!r}, not an IPv4 address") from None


def _value(outputs: Mapping[str, Any], name: str) -> Any:
    entry = outputs.get(name)
    return entry.get("value") if isinstance(entry, Mapping) else None


def _required(outputs: Mapping[str, Any], name: str) -> Any:
    value = _value(outputs, name)
    if value in (None, ""):
        raise InventoryError(f"terraform output has no {name}: deploy first (./deploy.sh deploy)")
    return value


def parse_outputs(outputs: Mapping[str, Any], model_hosts: Sequence[str] = ()) -> Hosts:
    """Read the hosts from the parsed JSON of ``terraform output -json``.

    Each output is an object with a ``value``; a missing or empty one means nothing
    (or an older configuration) is deployed, and the error says which output it was.
    With several model servers (an Auto Scaling group) their public addresses are
    not Terraform's to know: ``model_hosts`` gives them (``python -m deploy model-hosts``).
    """
    values = {name: _required(outputs, name) for name in REQUIRED_OUTPUTS}
    port = _value(outputs, "mlflow_port")
    asg = _value(outputs, "model_asg_name")
    private_ip = registry_url = None
    if asg:
        if not model_hosts:
            raise InventoryError(
                f"no running model server in the Auto Scaling group {asg} yet: "
                "wait a minute and re-run ./deploy.sh"
            )
        public_ips = tuple(_ip("model server", host) for host in model_hosts)
        # The MLflow host (the registry, with its data volume) stays beside the group; a
        # state made before it did has no address for it.
        registry_ip = _value(outputs, "mlflow_public_ip")
        if registry_ip:
            public_ips = (_ip("mlflow_public_ip", registry_ip), *public_ips)
            private = _ip("mlflow_private_ip", _required(outputs, "mlflow_private_ip"))
            registry_url = f"http://{private}:{REGISTRY_PORT}"
    else:
        for name in SINGLE_MODEL_OUTPUTS:
            values[name] = _required(outputs, name)
        public_ips = (_ip("mlflow_public_ip", values["mlflow_public_ip"]),)
        private_ip = _ip("mlflow_private_ip", values["mlflow_private_ip"])
    port = int(port if port is not None else 8000)
    url = _value(outputs, "mlflow_private_url")
    if not url and private_ip:
        url = f"http://{private_ip}:{port}"
    return Hosts(
        frontend_public_ip=_ip("frontend_public_ip", values["frontend_public_ip"]),
        mlflow_public_ips=public_ips,
        mlflow_private_ip=private_ip,
        ssh_user=str(values["ssh_user"]),
        mlflow_port=port,
        mlflow_url=url,
        frontend_hostname=_value(outputs, "frontend_hostname") or None,
        frontend_url=_value(outputs, "frontend_url") or None,
        data_volumes=dict(_value(outputs, "data_volume_ids") or {}),
        model_asg_name=asg or None,
        metrics_ports={k: int(v) for k, v in (_value(outputs, "metrics_ports") or {}).items()},
        registry_backend_uri=_value(outputs, "registry_backend_uri") or None,
        registry_artifacts=_value(outputs, "registry_artifacts") or None,
        registry_db_secret=_value(outputs, "mlflow_database_secret_arn") or None,
        registry_url=registry_url,
    )


def host_vars(hosts: Hosts, release: str | None = None) -> dict[str, str]:
    """The playbooks' variables every host gets (no SSH settings): the inventory's
    [all:vars], and what an Auto Scaling model server applies at boot."""
    out = {"radio_mlflow_port": str(hosts.mlflow_port)}
    if hosts.mlflow_private_ip:
        out["radio_mlflow_private_ip"] = hosts.mlflow_private_ip
    if hosts.mlflow_url:
        out["radio_mlflow_url"] = hosts.mlflow_url
    if hosts.frontend_hostname:
        out["radio_public_hostname"] = hosts.frontend_hostname
    # The ports Terraform opened to the frontend are the ones the roles listen on and scrape.
    for output, var in (("node_exporter", "radio_node_exporter_port"),
                        ("model_metrics", "radio_mlflow_metrics_port")):
        if output in hosts.metrics_ports:
            out[var] = str(hosts.metrics_ports[output])
    if hosts.registry_private_url:
        out["radio_registry_private_url"] = hosts.registry_private_url
    if hosts.registry_backend_uri:
        out["radio_model_registry_backend_uri"] = hosts.registry_backend_uri
    if hosts.registry_artifacts:
        out["radio_model_registry_artifacts"] = hosts.registry_artifacts
    if hosts.registry_db_secret:
        out["radio_model_registry_db_secret"] = hosts.registry_db_secret
    if release:
        out["radio_release"] = release
    return out


def boot_vars(hosts: Hosts, release: str | None = None) -> dict[str, str]:
    """What an Auto Scaling model server applies at boot: every host's variables and the
    MLflow host's registry to follow."""
    out = host_vars(hosts, release)
    if hosts.registry_url:
        out["radio_registry_url"] = hosts.registry_url
    return out


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
        **host_vars(hosts, release),
    }
    if src_archive:
        all_vars["radio_src_archive"] = str(src_archive)

    def host_line(name: str, address: str, role: str | None) -> str:
        volume = hosts.data_volumes.get(role) if role else None
        extra = f" radio_data_volume_id={shlex.quote(volume)}" if volume else ""
        return f"{name} ansible_host={address}{extra}"

    # The MLflow host's data volume is attached to the first (the MLflow host) only. Its
    # registry listens on the private network (the security group admits the frontend and
    # the model servers only); an Auto Scaling group's servers follow it.
    def registry_vars(first: bool) -> str:
        if first:
            return " radio_registry_listen=0.0.0.0" if hosts.registry_private_url else ""
        if not hosts.registry_url:
            return ""
        return f" radio_registry_url={shlex.quote(hosts.registry_url)}"

    model_lines = [
        host_line("radio-mlflow" if i == 0 else f"radio-mlflow-{i + 1}", ip,
                  "mlflow" if i == 0 else None) + registry_vars(i == 0)
        for i, ip in enumerate(hosts.mlflow_public_ips)
    ]
    lines = [
        "# Written by deploy.sh from `terraform output -json`; regenerated on every run.",
        "[frontend]",
        host_line("radio-frontend", hosts.frontend_public_ip, "frontend"),
        "",
        "[mlflow]",
        *model_lines,
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
