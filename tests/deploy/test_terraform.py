"""Terraform configuration: formatting, validity and the security rules, without AWS."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import hcl2
import pytest
from deploy_helpers import ROOT, run, tool

# The resources, split by concern (a new .tf file must be listed: a test checks the set).
RESOURCE_FILES = ("main.tf", "storage.tf", "model_tier.tf", "mlflow_backends.tf")
TF_FILES = (*RESOURCE_FILES, "variables.tf", "outputs.tf", "versions.tf")
# A local provider mirror (registry.terraform.io/hashicorp/aws/<version>/<platform>/)
# lets `terraform init` work offline; CI images may carry one here.
PROVIDER_MIRROR = Path(os.environ.get("RADIO_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
TFTEST = Path(__file__).resolve().parent / "terraform" / "radio.tftest.hcl"
# The Auto Scaling model servers' user data (model_tier.tf's templatefile).
BOOT_TEMPLATE = "deploy/model-server-boot.sh.tftpl"


def plain(value: Any) -> Any:
    """python-hcl2's output with the quotes around strings and keys removed, metadata dropped."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return json.loads(value)
    return value


def load(name: str) -> dict[str, Any]:
    with open(ROOT / name) as handle:
        return plain(hcl2.load(handle))


def blocks(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    """{name: body} of top-level blocks such as variable or output."""
    return {name: body for entry in doc.get(kind, []) for name, body in entry.items()}


def resources(doc: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for entry in doc.get("resource", []):
        for kind, named in entry.items():
            if kind == rtype:
                found.update(named)
    return found


@pytest.fixture(scope="module")
def main() -> dict[str, Any]:
    """Every resource file as one document (block lists concatenated, as Terraform does)."""
    merged: dict[str, list] = {}
    for name in RESOURCE_FILES:
        for kind, entries in load(name).items():
            merged.setdefault(kind, []).extend(entries if isinstance(entries, list) else [entries])
    return merged


def test_every_terraform_file_is_checked() -> None:
    assert {p.name for p in ROOT.glob("*.tf")} == set(TF_FILES)


@pytest.fixture(scope="module")
def variables() -> dict[str, Any]:
    return blocks(load("variables.tf"), "variable")


@pytest.fixture(scope="module")
def outputs() -> dict[str, Any]:
    return blocks(load("outputs.tf"), "output")


# --- formatting ------------------------------------------------------------------


def test_terraform_fmt_check() -> None:
    terraform = tool("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed (.ci/deploy-deps.sh installs it)")
    # The directory, not a file list: older releases take at most one argument.
    result = run([terraform, "fmt", "-check", "-diff", "-no-color"], cwd=ROOT)
    assert result.returncode == 0, f"run `terraform fmt`:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("name", TF_FILES)
def test_files_parse_and_follow_fmt_whitespace(name: str) -> None:
    """What `terraform fmt` would also flag, checkable without terraform."""
    text = (ROOT / name).read_text()
    load(name)  # parses as HCL
    assert text.endswith("\n") and not text.endswith("\n\n"), "one final newline"
    for number, line in enumerate(text.splitlines(), 1):
        assert "\t" not in line, f"{name}:{number}: tab"
        assert line == line.rstrip(), f"{name}:{number}: trailing whitespace"
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0, f"{name}:{number}: indent not a multiple of two"


# --- terraform validate with the real provider schema -----------------------------


def terraform_version(terraform: str) -> tuple[int, int]:
    """(major, minor) of the terraform binary."""
    result = run([terraform, "version", "-json"])
    major, minor = json.loads(result.stdout)["terraform_version"].split(".")[:2]
    return int(major), int(minor)


@pytest.fixture(scope="module")
def tf_workdir(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, dict[str, str]]:
    """terraform, a copy of the configuration initialised from the local provider mirror, env."""
    terraform = tool("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed (.ci/deploy-deps.sh installs it)")
    if not any(PROVIDER_MIRROR.glob("registry.terraform.io/hashicorp/aws/*/*")):
        pytest.skip(
            f"no hashicorp/aws provider in {PROVIDER_MIRROR} and the Terraform registry "
            "is out of reach: validate and test need the provider's schema"
        )
    version = terraform_version(terraform)
    if version < (1, 5):
        found = f"{version[0]}.{version[1]}"
        pytest.skip(f"terraform {found} is older than versions.tf's required_version (>= 1.5)")
    base = tmp_path_factory.mktemp("terraform")
    work = base / "config"
    (work / "tests").mkdir(parents=True)
    for name in TF_FILES:
        shutil.copy(ROOT / name, work / name)
    (work / BOOT_TEMPLATE).parent.mkdir()
    shutil.copy(ROOT / BOOT_TEMPLATE, work / BOOT_TEMPLATE)
    shutil.copy(TFTEST, work / "tests" / TFTEST.name)
    rc = base / "terraformrc"
    mirror = f'  filesystem_mirror {{\n    path = "{PROVIDER_MIRROR}"\n  }}\n'
    rc.write_text(f"provider_installation {{\n{mirror}}}\n")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1"}
    init = run(
        [terraform, "init", "-backend=false", "-input=false", "-no-color"], cwd=work, env=env
    )
    if "Failed to query available provider packages" in init.stderr:
        pytest.skip(f"the mirror in {PROVIDER_MIRROR} lacks a provider version that matches")
    assert init.returncode == 0, init.stdout + init.stderr
    return terraform, work, env


def test_terraform_validate(tf_workdir: tuple[str, Path, dict[str, str]]) -> None:
    terraform, work, env = tf_workdir
    result = run([terraform, "validate", "-json", "-no-color"], cwd=work, env=env)
    report = json.loads(result.stdout)
    assert report["valid"], json.dumps(report["diagnostics"], indent=2)
    assert report["warning_count"] == 0, json.dumps(report["diagnostics"], indent=2)


def test_terraform_test_with_a_mocked_provider(
    tf_workdir: tuple[str, Path, dict[str, str]],
) -> None:
    """tests/deploy/terraform/radio.tftest.hcl: zones, key pair, security rules, validation."""
    terraform, work, env = tf_workdir
    version = terraform_version(terraform)
    if version < (1, 7):
        pytest.skip(f"terraform {version[0]}.{version[1]} predates mock providers (1.7)")
    result = run([terraform, "test", "-no-color", "-verbose"], cwd=work, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    runs = len(re.findall(r'^run "', TFTEST.read_text(), re.M))
    assert runs >= 15
    assert f"Success! {runs} passed, 0 failed." in output
    # The plan of going from one model server to three (managed backend), on the state
    # the run before applied: what it would create, change, replace and destroy.
    plan = output.split('run "scale_out_to_three_model_servers"... pass', 1)[1]
    plan = re.split(r'^  run "', plan, maxsplit=1, flags=re.M)[0]
    actions = dict(re.findall(r"^  # (\S+) (?:will be|must be) (\w+)", plan, re.M))
    destroyed = {a for a, action in actions.items() if action in ("destroyed", "replaced")}
    # Only the direct frontend -> MLflow host rule goes (the load balancer takes over).
    assert destroyed == {"aws_vpc_security_group_ingress_rule.mlflow_from_frontend[0]"}, actions
    assert "replaced" not in actions.values()
    for kept in ("aws_instance.mlflow[0]", 'aws_ebs_volume.data["mlflow"]',
                 'aws_ebs_volume.data["frontend"]', "aws_db_instance.mlflow[0]",
                 "aws_s3_bucket.artifacts[0]", 'aws_volume_attachment.data["mlflow"]'):
        assert kept not in actions, (kept, actions[kept])
    assert actions["aws_autoscaling_group.model[0]"] == "created"


def test_terraform_test_file_is_formatted() -> None:
    terraform = tool("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed (.ci/deploy-deps.sh installs it)")
    result = run([terraform, "fmt", "-check", "-diff", "-no-color", str(TFTEST)])
    if "Only .tf" in result.stderr:
        pytest.skip("this terraform predates .tftest.hcl files (1.6)")
    assert result.returncode == 0, result.stdout + result.stderr


# --- provider, inputs and outputs ---------------------------------------------------


def test_aws_provider_is_pinned() -> None:
    terraform = load("versions.tf")["terraform"][0]
    aws = terraform["required_providers"][0]["aws"]
    assert aws["source"] == "hashicorp/aws"
    assert re.fullmatch(r"~> \d+\.\d+", aws["version"]), aws["version"]
    assert terraform["required_version"].startswith(">=")


def test_provider_reads_the_learner_lab_profile(main: dict[str, Any], variables) -> None:
    provider = main["provider"][0]["aws"]
    assert provider["profile"] == "${var.aws_profile}"
    assert provider["region"] == "${var.region}"
    assert provider["shared_credentials_files"] == ["${var.credentials_file}"]
    assert variables["aws_profile"]["default"] == "awslearnerlab"
    assert variables["credentials_file"]["default"] == ".aws/_credentials"


def test_every_variable_and_output_is_described(variables, outputs) -> None:
    assert variables and outputs
    for kind, named in (("variable", variables), ("output", outputs)):
        for name, body in named.items():
            assert len(body.get("description", "")) > 10, f"{kind} {name} lacks a description"


def test_outputs_name_both_hosts(outputs) -> None:
    # The Elastic IP, not the instance's address, which changes at every restart.
    assert outputs["frontend_public_ip"]["value"] == "${aws_eip.frontend.public_ip}"
    assert "aws_instance.mlflow[0].public_ip" in outputs["mlflow_public_ip"]["value"]
    assert "aws_instance.mlflow[0].private_ip" in outputs["mlflow_private_ip"]["value"]
    assert "aws_lb.model[0].dns_name" in outputs["mlflow_private_url"]["value"]


def test_instance_types_and_volumes(main: dict[str, Any], variables) -> None:
    assert variables["mlflow_instance_type"]["default"] == "t3.medium"
    assert "default" in variables["frontend_instance_type"]
    instances = resources(main, "aws_instance")
    assert set(instances) == {"frontend", "mlflow"}
    for name, body in instances.items():
        assert body["instance_type"] == f"${{var.{name}_instance_type}}"
        root = body["root_block_device"][0]
        assert root["volume_size"] == f"${{var.{name}_root_volume_gb}}"
        assert root["encrypted"] is True
        assert body["metadata_options"][0]["http_tokens"] == "required"


def test_ami_comes_from_a_data_source(main: dict[str, Any]) -> None:
    for name in TF_FILES:
        assert not re.search(r"\bami-[0-9a-f]{8,}\b", (ROOT / name).read_text()), name
    ami = next(e["aws_ami"]["ubuntu"] for e in main["data"] if "aws_ami" in e)
    assert ami["owners"] == ["099720109477"]  # Canonical
    assert ami["most_recent"] is True
    name_filter = next(f for f in ami["filter"] if f["name"] == "name")
    # 22.04 is the LTS that ships python3.11 (the project's Python) in its archive.
    assert any("ubuntu-jammy-22.04-amd64-server-" in v for v in name_filter["values"])
    for body in resources(main, "aws_instance").values():
        assert body["ami"] == "${data.aws_ami.ubuntu.id}"


def test_key_pair_from_key_pem_or_existing_name(main: dict[str, Any], variables) -> None:
    key = resources(main, "aws_key_pair")["deploy"]
    assert key["public_key"] == "${var.ssh_public_key}"
    assert key["count"] == "${var.existing_key_name == null ? 1 : 0}"
    assert variables["existing_key_name"]["default"] is None


def test_tags(main: dict[str, Any]) -> None:
    provider = main["provider"][0]["aws"]
    assert provider["default_tags"][0]["tags"] == "${local.tags}"
    for body in resources(main, "aws_instance").values():
        assert "Name" in body["tags"]


# --- security groups: least privilege -------------------------------------------


def ingress_rules(main: dict[str, Any], group: str) -> dict[str, dict[str, Any]]:
    return {
        name: body
        for name, body in resources(main, "aws_vpc_security_group_ingress_rule").items()
        if body["security_group_id"] == f"${{aws_security_group.{group}.id}}"
    }


def test_no_inline_rules(main: dict[str, Any]) -> None:
    """Rules are separate resources, so the checks below see every one of them."""
    for body in resources(main, "aws_security_group").values():
        assert "ingress" not in body and "egress" not in body


def test_frontend_opens_http_https_and_admin_ssh_only(main: dict[str, Any], variables) -> None:
    rules = ingress_rules(main, "frontend")
    ports = sorted((r["from_port"], r["to_port"]) for r in rules.values())
    assert ports == [(22, 22), (80, 80), (443, 443)]
    for rule in rules.values():
        if rule["from_port"] == 22:
            assert rule["cidr_ipv4"] == "${var.admin_cidr}"
        else:
            assert rule["cidr_ipv4"] == "${each.value}"
            assert rule["for_each"] == "${toset(var.http_ingress_cidrs)}"
    assert variables["http_ingress_cidrs"]["default"] == ["0.0.0.0/0"]


def test_admin_cidr_has_no_default_and_refuses_the_internet(variables) -> None:
    admin = variables["admin_cidr"]
    assert "default" not in admin
    condition = admin["validation"][0]["condition"]
    # By prefix length (terraform test checks the behaviour: 0.0.0.0/1 is refused).
    assert ">= 16" in condition


def test_model_port_only_from_the_frontend_group(main: dict[str, Any], variables) -> None:
    rules = ingress_rules(main, "mlflow")
    rules.pop("mlflow_metrics_from_frontend")  # Prometheus's ports: the test below
    # The registry's port, from the model servers' own group only (several servers).
    registry = rules.pop("registry_from_model_servers")
    assert registry["referenced_security_group_id"] == "${aws_security_group.mlflow.id}"
    assert registry["from_port"] == registry["to_port"] == "${local.registry_port}"
    assert "cidr_ipv4" not in registry
    # ... and from the frontend (admin page, retraining, drift jobs), with any count.
    front = rules.pop("registry_from_frontend")
    assert front["referenced_security_group_id"] == "${aws_security_group.frontend.id}"
    assert front["from_port"] == front["to_port"] == "${local.registry_port}"
    assert "cidr_ipv4" not in front and "count" not in front
    model_port = "${var.mlflow_port}"
    assert variables["mlflow_port"]["default"] == 8000
    by_port = {}
    for name, rule in rules.items():
        by_port.setdefault(rule["from_port"], []).append((name, rule))
    assert set(by_port) == {22, model_port}
    assert by_port[22][0][1]["cidr_ipv4"] == "${var.admin_cidr}"
    sources = {name: rule for name, rule in by_port[model_port]}
    frontend = sources.pop("mlflow_from_frontend")
    assert frontend["referenced_security_group_id"] == "${aws_security_group.frontend.id}"
    assert "cidr_ipv4" not in frontend
    # With several servers, their load balancer instead, itself open to the frontend only.
    balancer = sources.pop("mlflow_from_lb")
    assert balancer["referenced_security_group_id"] == "${aws_security_group.model_lb[0].id}"
    assert "cidr_ipv4" not in balancer
    lb_rules = ingress_rules(main, "model_lb[0]")
    assert [r["referenced_security_group_id"] for r in lb_rules.values()] == [
        "${aws_security_group.frontend.id}"
    ]
    assert "cidr_ipv4" not in next(iter(lb_rules.values()))
    # The only other way in is the operator's explicit, empty-by-default list.
    ((name, rule),) = sources.items()
    assert rule["for_each"] == "${toset(var.mlflow_public_ingress_cidrs)}"
    assert variables["mlflow_public_ingress_cidrs"]["default"] == []


def test_metrics_ports_only_from_the_frontend_group(main: dict[str, Any], variables,
                                                    outputs) -> None:
    """Prometheus runs on the frontend: the model servers' node exporter and model metrics
    admit its security group, nothing else; the frontend opens no metrics port at all."""
    rule = ingress_rules(main, "mlflow")["mlflow_metrics_from_frontend"]
    assert rule["for_each"] == "${local.metrics_ports}"
    assert rule["from_port"] == rule["to_port"] == "${each.value}"
    assert rule["referenced_security_group_id"] == "${aws_security_group.frontend.id}"
    assert "cidr_ipv4" not in rule and "cidr_ipv6" not in rule
    metrics = main["locals"][0]["metrics_ports"]
    assert metrics == {"node_exporter": "${var.node_exporter_port}",
                       "model_metrics": "${var.model_metrics_port}"}
    for name, default in (("node_exporter_port", 9100), ("model_metrics_port", 9102)):
        assert variables[name]["default"] == default
        assert ">= 1024" in variables[name]["validation"][0]["condition"]
    assert outputs["metrics_ports"]["value"] == "${local.metrics_ports}"
    # The same ports as the Ansible roles' defaults.
    import yaml

    model = yaml.safe_load((ROOT / "roles/radio_model/defaults/main.yml").read_text())
    monitoring = yaml.safe_load((ROOT / "roles/radio_monitoring/defaults/main.yml").read_text())
    assert "default(9102)" in model["radio_model_metrics_port"]
    assert "default(9102)" in monitoring["radio_monitoring_model_metrics_port"]
    assert "default(9100)" in monitoring["radio_monitoring_node_exporter_port"]


def test_no_rule_opens_ssh_or_the_model_port_to_the_world(main: dict[str, Any]) -> None:
    text = "".join((ROOT / name).read_text() for name in RESOURCE_FILES)
    opened = re.findall(r'cidr_ipv4\s*=\s*"0\.0\.0\.0/0"', text)
    # The only literal world-wide CIDRs are the two hosts' egress rules.
    egress = resources(main, "aws_vpc_security_group_egress_rule")
    world = [name for name, rule in egress.items() if rule.get("cidr_ipv4") == "0.0.0.0/0"]
    assert len(opened) == 2 and sorted(world) == ["frontend_all", "mlflow_all"]
    # Every ingress rule on 22 or the model port names a variable checked by
    # prefix length, or a security group: never a literal CIDR.
    for name, rule in resources(main, "aws_vpc_security_group_ingress_rule").items():
        if rule["from_port"] in (22, "${var.mlflow_port}"):
            assert rule.get("cidr_ipv4") in (None, "${var.admin_cidr}", "${each.value}"), name
    # The load balancer is internal and the database private.
    assert resources(main, "aws_lb")["model"]["internal"] is True
    assert resources(main, "aws_db_instance")["mlflow"]["publicly_accessible"] is False


def test_the_model_servers_user_data_is_a_valid_boot_script() -> None:
    """The template as templatefile renders it (its four variables), checked by bash -n."""
    text = (ROOT / BOOT_TEMPLATE).read_text()
    names = set(re.findall(r"\$\{(\w+)\}", text))
    assert names == {"bucket", "region", "release_key", "vars_key"}
    script = text
    for name, value in (("bucket", "radio-mlflow-abc"), ("region", "us-east-1"),
                        ("release_key", "releases/radio-src.tar.gz"),
                        ("vars_key", "releases/model-server-vars.json")):
        script = script.replace(f"${{{name}}}", value)
    assert script.startswith("#!/bin/bash\n") and "set -euo pipefail" in script
    result = run(["bash", "-n"], input=script)
    assert result.returncode == 0, result.stderr
    # The same playbook deploy.sh runs over SSH, applied locally, from the published release.
    assert "mlflow.playbook.yml" in script and "ansible_connection=local" in script
    assert 's3.download_file(bucket, "releases/radio-src.tar.gz"' in script
    assert "umask 077" in script  # the variables hold the registry's password
