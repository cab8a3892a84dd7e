"""Inventory from `terraform output -json` (a recorded output of this configuration)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_helpers import FIXTURES, ROOT, ansible_env, require, run

from deploy.__main__ import main
from deploy.inventory import InventoryError, load_outputs, parse_outputs, render_inventory

RECORDED = FIXTURES / "terraform-output.json"


def test_parse_recorded_outputs() -> None:
    hosts = parse_outputs(load_outputs(RECORDED))
    assert hosts.frontend_public_ip == "198.51.100.10"
    assert hosts.mlflow_public_ip == "198.51.100.20"
    assert hosts.mlflow_private_ip == "172.31.20.5"
    assert hosts.ssh_user == "ubuntu"
    assert hosts.mlflow_port == 8000
    assert hosts.mlflow_url == "http://172.31.20.5:8000"
    assert hosts.app_url == "https://198-51-100-10.sslip.io"
    assert hosts.data_volumes == {
        "frontend": "vol-0f00000000000000a",
        "mlflow": "vol-0f00000000000000b",
    }


def test_metrics_ports_reach_the_roles(tmp_path: Path) -> None:
    """The ports Terraform opened to the frontend's Prometheus are the ones the roles use."""
    outputs = json.loads(RECORDED.read_text())
    outputs["metrics_ports"]["value"] = {"node_exporter": 19100, "model_metrics": 19102}
    hosts = parse_outputs(outputs)
    assert hosts.metrics_ports == {"node_exporter": 19100, "model_metrics": 19102}
    text = render_inventory(hosts, key_file=tmp_path / "k", known_hosts=tmp_path / "kh")
    assert "radio_node_exporter_port=19100\n" in text
    assert "radio_mlflow_metrics_port=19102\n" in text
    # An older state without the output: the roles' defaults, nothing written.
    del outputs["metrics_ports"]
    text = render_inventory(parse_outputs(outputs), key_file=tmp_path / "k",
                            known_hosts=tmp_path / "kh")
    assert "radio_node_exporter_port=" not in text and "radio_mlflow_metrics_port=" not in text


def scaled_out() -> dict:
    """The recorded outputs as three model servers behind the internal load balancer give them."""
    outputs = json.loads(RECORDED.read_text())
    lb = "http://internal-radio-model-123.us-east-1.elb.amazonaws.com:8000"
    for name, value in (
        ("model_asg_name", "radio-model"),
        ("model_server_count", 3),
        ("mlflow_public_ip", None),
        ("mlflow_private_ip", None),
        ("mlflow_url", None),
        ("mlflow_private_url", lb),
        ("data_volume_ids", {"frontend": "vol-0f00000000000000a"}),
    ):
        outputs[name]["value"] = value
    return outputs


def test_scaled_out_inventory_keeps_the_mlflow_host_and_its_volume(tmp_path: Path) -> None:
    """Three model servers and the MLflow host (the registry), which stays with its data
    volume (attached to it alone) and, with the managed backend, is told its database."""
    outputs = scaled_out()
    for name, value in (
        ("mlflow_public_ip", "198.51.100.20"), ("mlflow_private_ip", "172.31.20.5"),
        ("data_volume_ids", {"frontend": "vol-0f00000000000000a",
                             "mlflow": "vol-0f00000000000000b"}),
        ("registry_backend_uri",
         "postgresql+psycopg://mlflow@radio-mlflow.abc.rds.amazonaws.com:5432/mlflow"
         "?sslmode=require"),
        ("registry_artifacts", "s3://radio-mlflow-abc/artifacts"),
        ("mlflow_database_secret_arn",
         "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-abc"),
    ):
        outputs[name]["value"] = value
    hosts = parse_outputs(outputs, ["198.51.100.31", "198.51.100.30"])
    text = render_inventory(hosts, key_file=tmp_path / "k", known_hosts=tmp_path / "kh")
    # The registry on the MLflow host's private network; the group's servers follow it.
    assert text.split("[mlflow]\n", 1)[1].split("\n\n", 1)[0].splitlines() == [
        "radio-mlflow ansible_host=198.51.100.20 radio_data_volume_id=vol-0f00000000000000b"
        " radio_registry_listen=0.0.0.0",
        "radio-mlflow-2 ansible_host=198.51.100.31 radio_registry_url=http://172.31.20.5:5000",
        "radio-mlflow-3 ansible_host=198.51.100.30 radio_registry_url=http://172.31.20.5:5000",
    ]
    assert "radio_registry_url" not in text.split("[all:vars]", 1)[1]
    assert "radio_registry_private_url=http://172.31.20.5:5000\n" in text
    assert ("radio_model_registry_backend_uri='postgresql+psycopg://mlflow@"
            "radio-mlflow.abc.rds.amazonaws.com:5432/mlflow?sslmode=require'\n") in text
    # where the registry reads its database's password at start (never the password)
    assert ("radio_model_registry_db_secret="
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-abc\n") in text
    assert "radio_model_registry_artifacts=s3://radio-mlflow-abc/artifacts\n" in text


def test_scaled_out_inventory_lists_every_server_and_the_load_balancer(tmp_path: Path) -> None:
    """A state from before the MLflow host stayed (no address for it): the group only."""
    hosts = parse_outputs(scaled_out(), ["198.51.100.31", "198.51.100.30", "198.51.100.32"])
    text = render_inventory(hosts, key_file=tmp_path / "k", known_hosts=tmp_path / "kh")
    assert "[mlflow]\nradio-mlflow ansible_host=198.51.100.31\n" in text
    assert "radio-mlflow-3 ansible_host=198.51.100.32\n" in text
    assert (
        "radio_mlflow_url=http://internal-radio-model-123.us-east-1.elb.amazonaws.com:8000\n"
        in text
    )
    assert "radio_mlflow_private_ip" not in text
    assert "radio_registry" not in text  # no MLflow host in that state: no registry to name
    assert (
        "radio-frontend ansible_host=198.51.100.10 radio_data_volume_id=vol-0f00000000000000a\n"
        in text
    )


def test_scaled_out_without_running_servers_says_so() -> None:
    with pytest.raises(InventoryError, match="no running model server in the Auto Scaling group"):
        parse_outputs(scaled_out(), [])


def test_recorded_outputs_match_outputs_tf() -> None:
    """The fixture has every output the configuration declares, so it stays representative."""
    import hcl2

    with open(ROOT / "outputs.tf") as handle:
        declared = {name.strip('"') for entry in hcl2.load(handle)["output"] for name in entry}
    assert declared == set(json.loads(RECORDED.read_text()))


@pytest.mark.parametrize("missing", ["frontend_public_ip", "mlflow_private_ip", "ssh_user"])
def test_missing_output_is_named(missing: str) -> None:
    outputs = json.loads(RECORDED.read_text())
    del outputs[missing]
    with pytest.raises(InventoryError, match=f"terraform output has no {missing}"):
        parse_outputs(outputs)


def test_nothing_deployed() -> None:
    with pytest.raises(InventoryError, match="no frontend_public_ip: deploy first"):
        parse_outputs({})


def test_address_must_be_ipv4() -> None:
    outputs = json.loads(RECORDED.read_text())
    outputs["mlflow_private_ip"]["value"] = "not-an-ip"
    with pytest.raises(InventoryError, match="mlflow_private_ip is 'not-an-ip'"):
        parse_outputs(outputs)


def test_cli_writes_the_inventory(tmp_path: Path) -> None:
    key = tmp_path / "my keys" / "key.pem"  # a space: values must be quoted
    out = tmp_path / "inv" / "inventory.ini"
    archive = tmp_path / "radio-src.tar.gz"
    code = main(
        [
            "inventory", str(RECORDED), "--key", str(key), "--known-hosts",
            str(tmp_path / "known_hosts"), "--output", str(out), "--release", "0123456789ab",
            "--src-archive", str(archive),
        ]
    )  # fmt: skip
    assert code == 0
    text = out.read_text()
    assert (
        "[frontend]\nradio-frontend ansible_host=198.51.100.10 "
        "radio_data_volume_id=vol-0f00000000000000a\n" in text
    )
    # The registry listens on the MLflow host's private network, where the frontend (admin
    # page, retraining, drift jobs) reaches it.
    assert (
        "[mlflow]\nradio-mlflow ansible_host=198.51.100.20 "
        "radio_data_volume_id=vol-0f00000000000000b radio_registry_listen=0.0.0.0\n" in text
    )
    assert "radio_registry_private_url=http://172.31.20.5:5000\n" in text
    assert "radio_public_hostname=198-51-100-10.sslip.io\n" in text
    assert "radio_mlflow_private_ip=172.31.20.5\n" in text
    assert f"ansible_ssh_private_key_file={shlex.quote(str(key))}\n" in text
    assert "radio_release=0123456789ab\n" in text


def test_ansible_reads_the_inventory(tmp_path: Path) -> None:
    """ansible-inventory resolves the groups and variables the playbooks use."""
    tool = require("ansible-inventory")
    key = tmp_path / "my keys" / "key.pem"
    text = render_inventory(
        parse_outputs(load_outputs(RECORDED)),
        key_file=key,
        known_hosts=tmp_path / "known hosts",
        release="0123456789ab",
        src_archive=tmp_path / "radio-src.tar.gz",
    )
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(text)
    result = run([tool, "-i", str(inventory), "--list"], env=ansible_env(tmp_path))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["frontend"]["hosts"] == ["radio-frontend"]
    assert data["mlflow"]["hosts"] == ["radio-mlflow"]
    hostvars = data["_meta"]["hostvars"]["radio-frontend"]
    assert hostvars["ansible_host"] == "198.51.100.10"
    assert hostvars["ansible_user"] == "ubuntu"
    assert hostvars["ansible_ssh_private_key_file"] == str(key)
    assert hostvars["radio_mlflow_private_ip"] == "172.31.20.5"
    assert hostvars["radio_data_volume_id"] == "vol-0f00000000000000a"
    assert data["_meta"]["hostvars"]["radio-mlflow"]["radio_data_volume_id"] == (
        "vol-0f00000000000000b"
    )
    assert hostvars["radio_src_archive"] == str(tmp_path / "radio-src.tar.gz")
    assert f"UserKnownHostsFile='{tmp_path / 'known hosts'}'" in hostvars["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=accept-new" in hostvars["ansible_ssh_common_args"]


def test_addresses_command_prints_the_contract_lines() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploy", "addresses", str(RECORDED)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "FrontEnd Application: https://198-51-100-10.sslip.io",
        "Mlflow app address: http://198.51.100.20:8000",
    ]


def test_cli_reports_bad_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "outputs.json"
    bad.write_text("Error: no state")
    assert main(["hosts", str(bad)]) == 1
    assert "is not terraform output JSON" in capsys.readouterr().err


def test_ansible_reads_the_managed_registrys_settings_whole(tmp_path: Path) -> None:
    """The managed backend's URI carries '?' and '=' (sslmode=require): ansible-inventory
    must hand the role the whole URI and the secret's ARN, not a value cut at the '='."""
    tool = require("ansible-inventory")
    outputs = load_outputs(RECORDED)
    uri = ("postgresql+psycopg://mlflow@radio-mlflow.abc.rds.amazonaws.com:5432/mlflow"
           "?sslmode=require")
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-abc"
    outputs["registry_backend_uri"]["value"] = uri
    outputs["mlflow_database_secret_arn"]["value"] = arn
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(render_inventory(parse_outputs(outputs), key_file=tmp_path / "k",
                                          known_hosts=tmp_path / "kh"))
    result = run([tool, "-i", str(inventory), "--list"], env=ansible_env(tmp_path))
    assert result.returncode == 0, result.stderr
    hostvars = json.loads(result.stdout)["_meta"]["hostvars"]["radio-mlflow"]
    assert hostvars["radio_model_registry_backend_uri"] == (
        "postgresql+psycopg://mlflow@radio-mlflow.abc.rds.amazonaws.com:5432/mlflow"
        "?sslmode=require")
    assert hostvars["radio_model_registry_db_secret"] == (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-abc")
