"""deploy.sh's own logic: preflight messages, the command sequence, the files it writes.

Terraform and ansible-playbook are recording stubs on a fake PATH; STS is a stub
server on loopback; the two network steps (SSH wait, smoke test) are replaced by
recording shell functions, since the recorded addresses are not ours to contact.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from deploy_helpers import FIXTURES, ROOT, require, run

SCRIPT = ROOT / "deploy.sh"
RECORDED = FIXTURES / "terraform-output.json"
ADMIN = "203.0.113.7/32"
# Real commands the script may use; anything else is absent unless a test adds it.
BASE_TOOLS = ("bash", "env", "dirname", "stat", "grep", "sed", "cat", "mkdir", "rm", "mv", "tr")

LAB = """\
[awslearnerlab]
aws_access_key_id = ASIATESTTESTTESTTEST
aws_secret_access_key = secret
aws_session_token = token
"""

MSG = {
    "terraform": "terraform not found on PATH: install Terraform >= 1.5 "
    "(https://developer.hashicorp.com/terraform/install)",
    "ansible-playbook": "ansible-playbook not found on PATH: "
    "pip install '.[deploy]' (ansible-core)",
    "git": "git not found on PATH: the release is shipped with git archive",
    "python3": "python3 not found on PATH (or set RADIO_PYTHON): it runs the deploy helpers",
    "credentials": ".aws/_credentials not found: copy .aws/_credentials.example and paste the "
    "lab's credentials under [awslearnerlab]",
    "profile": ".aws/_credentials has no [awslearnerlab] profile",
    "key": ".aws/key.pem not found: save the SSH private key there (chmod 600 .aws/key.pem)",
    "key-mode": ".aws/key.pem has mode 644; ssh refuses keys others can read: "
    "chmod 600 .aws/key.pem",
    "ssh-keygen": "ssh-keygen not found on PATH: "
    "it derives the key pair's public key from .aws/key.pem",
}

STUB = """#!/bin/sh
printf '%s\\n' "{name} $*" >>"$FAKE_LOG"
{extra}
exit 0
"""


IDENTITY = """<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/voclabs/user1</Arn>
    <UserId>AROAEXAMPLE:user1</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"""


class FakeSts(BaseHTTPRequestHandler):
    """STS on loopback: answers GetCallerIdentity and records who signed the request."""

    signers: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.signers.append(self.headers.get("Authorization", ""))
        ok = "Action=GetCallerIdentity" in body
        raw = IDENTITY.encode() if ok else b"<ErrorResponse/>"
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def sts_endpoint() -> Iterator[str]:
    """URL of a FakeSts; its handler class's ``signers`` lists the Authorization headers."""
    FakeSts.signers = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Project:
    """A copy of the deploy side of the repo with its own .aws, PATH and log."""

    def __init__(self, base: Path) -> None:
        self.root = base / "radio"
        self.bin = base / "bin"
        self.log = base / "calls.log"
        self.root.mkdir()
        self.bin.mkdir()
        shutil.copy(SCRIPT, self.root / "deploy.sh")
        shutil.copytree(
            ROOT / "deploy", self.root / "deploy", ignore=shutil.ignore_patterns("__pycache__")
        )
        (self.root / ".aws").mkdir()
        for tool in BASE_TOOLS:
            self.link(tool)
        self.env = {
            "PATH": str(self.bin),
            "HOME": str(base / "home"),
            "FAKE_LOG": str(self.log),
            "LANG": "C.UTF-8",
            # Belt and braces: nothing may reach a real AWS endpoint.
            "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def link(self, tool: str) -> None:
        real = shutil.which(tool)
        assert real, f"{tool} is needed to test deploy.sh"
        (self.bin / tool).symlink_to(real)

    def stub(self, name: str, extra: str = "") -> None:
        path = self.bin / name
        path.write_text(STUB.format(name=name, extra=extra))
        path.chmod(0o755)

    def add_python(self) -> None:
        wrapper = self.bin / "python3"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        wrapper.chmod(0o755)

    def add_credentials(self, text: str = LAB) -> None:
        (self.root / ".aws" / "_credentials").write_text(text)

    def add_key(self, mode: int = 0o600) -> Path:
        key = self.root / ".aws" / "key.pem"
        keygen = require("ssh-keygen")
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        key.chmod(mode)
        return key

    def all_tools(self) -> None:
        self.stub("terraform", f'[ "$1" = output ] && cat "{RECORDED}"')
        self.stub("ansible-playbook")
        self.add_python()
        self.link("git")
        self.link("ssh-keygen")

    def commit(self) -> str:
        git = ["git", "-C", str(self.root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
        subprocess.run([*git, "init", "-q"], check=True)
        # The repo's ignore rules: the secrets in .aws must stay out of the release.
        shutil.copy(ROOT / ".gitignore", self.root / ".gitignore")
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "release"], check=True)
        return subprocess.run(
            [*git, "rev-parse", "--short=12", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        bash = shutil.which("bash")
        return run(
            [bash, str(self.root / "deploy.sh"), *args], env={**self.env, **env}, timeout=120
        )

    def source(self, script: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Source deploy.sh (defining its functions), then run ``script``."""
        bash = shutil.which("bash")
        code = f'source "{self.root}/deploy.sh"\n{script}'
        return run([bash, "-c", code], env={**self.env, **env}, timeout=120)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    prefix = "deploy.sh: error: "
    return [line[len(prefix) :] for line in result.stderr.splitlines() if line.startswith(prefix)]


# --- preflight ----------------------------------------------------------------------


def test_preflight_names_everything_missing(project: Project) -> None:
    result = project.run("deploy")
    assert result.returncode == 2
    assert errors(result) == [
        MSG[k]
        for k in (
            "terraform",
            "ansible-playbook",
            "git",
            "python3",
            "credentials",
            "key",
            "ssh-keygen",
        )
    ]
    assert "7 problem(s) found; nothing was changed." in result.stderr
    assert not (project.root / ".deploy").exists()
    assert project.calls() == []


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("terraform", MSG["terraform"]),
        ("ansible-playbook", MSG["ansible-playbook"]),
        ("python3", MSG["python3"]),
        ("credentials", MSG["credentials"]),
        ("profile", MSG["profile"]),
        ("key", MSG["key"]),
        ("key-mode", MSG["key-mode"]),
    ],
)
def test_each_preflight_failure_alone(project: Project, broken: str, message: str) -> None:
    project.all_tools()
    if broken in ("terraform", "ansible-playbook", "python3"):
        (project.bin / broken).unlink()
    if broken != "credentials":
        project.add_credentials(
            LAB.replace("[awslearnerlab]", "[default]") if broken == "profile" else LAB
        )
    if broken != "key":
        project.add_key(0o644 if broken == "key-mode" else 0o600)
    result = project.run("deploy")
    assert result.returncode == 2, result.stderr
    assert errors(result) == [message]
    assert "1 problem(s) found" in result.stderr
    assert project.calls() == []


def test_python_without_boto3(project: Project) -> None:
    project.all_tools()
    (project.bin / "python3").write_text("#!/bin/sh\nexit 1\n")
    project.add_credentials()
    project.add_key()
    result = project.run("deploy")
    assert result.returncode == 2
    assert errors(result) == [f"{project.bin}/python3 cannot import boto3: pip install '.[deploy]'"]


def test_read_only_key_is_accepted_and_bad_credentials_stop_at_once(project: Project) -> None:
    """Mode 400 passes; then STS (unreachable here) fails before anything is created."""
    project.all_tools()
    project.add_credentials()
    project.add_key(0o400)
    result = project.run("deploy")
    assert result.returncode == 1, result.stderr
    assert errors(result)[0].startswith("cannot check the credentials with AWS STS")
    assert project.calls() == []  # no terraform, no ansible
    assert not (project.root / ".deploy").exists()


def test_status_needs_no_credentials(project: Project) -> None:
    project.all_tools()
    result = project.source('smoke_test() { echo "smoke $*" >>"$FAKE_LOG"; }\nmain status')
    assert result.returncode == 0, result.stderr
    assert "FrontEnd Application: https://198-51-100-10.sslip.io" in result.stdout
    assert "showing the last known state" in result.stderr
    assert project.calls() == [
        "terraform output -json",
        "smoke https://198-51-100-10.sslip.io/health --attempts 1 --allow-self-signed",
    ]


def test_status_refreshes_the_state_first(project: Project) -> None:
    """Stopped and started lab instances have new addresses: refresh, then print."""
    project.all_tools()
    project.add_credentials()
    state = project.root / ".deploy"
    state.mkdir()
    (state / "terraform.tfvars.json").write_text("{}")
    result = project.source('smoke_test() { echo "smoke $*" >>"$FAKE_LOG"; }\nmain status')
    assert result.returncode == 0, result.stderr
    assert project.calls()[:2] == [
        f"terraform apply -refresh-only -auto-approve -input=false -var-file={state}/"
        "terraform.tfvars.json",
        "terraform output -json",
    ]


def test_backup_snapshots_through_the_helper(project: Project, sts_endpoint: str) -> None:
    project.all_tools()
    project.add_credentials()
    result = project.source(
        'pydeploy() { echo "pydeploy $*" >>"$FAKE_LOG"; }\nmain backup',
        AWS_ENDPOINT_URL_STS=sts_endpoint,
    )
    assert result.returncode == 0, result.stderr
    outputs = project.root / ".deploy" / "outputs.json"
    assert project.calls()[-2:] == [
        "terraform output -json",
        f"pydeploy backup {outputs} --file {project.root}/.aws/_credentials "
        "--profile awslearnerlab --region us-east-1",
    ]


def test_unknown_command(project: Project) -> None:
    result = project.run("launch")
    assert result.returncode == 1
    assert errors(result) == [
        "unknown command 'launch' (use deploy, plan, destroy, status, backup or rollback)"
    ]


def test_admin_cidr_refuses_the_internet(project: Project) -> None:
    project.add_python()
    result = project.source("admin_cidr", RADIO_ADMIN_CIDR="0.0.0.0/0")
    assert result.returncode == 1
    assert errors(result) == [
        "RADIO_ADMIN_CIDR=0.0.0.0/0 is larger than a /16: SSH must stay closed to the internet "
        "(use your ip/32)"
    ]
    result = project.source("admin_cidr", RADIO_ADMIN_CIDR="10.0.0.1")
    assert errors(result) == [
        "RADIO_ADMIN_CIDR=10.0.0.1 is not an IPv4 CIDR such as 203.0.113.7/32"
    ]


@pytest.mark.parametrize("cidr", ["0.0.0.0/1", "128.0.0.0/1", "10.0.0.0/8", "198.51.0.0/15"])
def test_admin_cidr_refuses_anything_larger_than_a_slash_16(project: Project, cidr: str) -> None:
    project.add_python()
    result = project.source("admin_cidr", RADIO_ADMIN_CIDR=cidr)
    assert result.returncode == 1
    assert errors(result) == [
        f"RADIO_ADMIN_CIDR={cidr} is larger than a /16: SSH must stay closed to the internet "
        "(use your ip/32)"
    ]


@pytest.mark.parametrize("cidr", ["198.51.0.0/16", "203.0.113.7/32", "203.0.113.0/24"])
def test_admin_cidr_accepts_a_slash_16_or_narrower(project: Project, cidr: str) -> None:
    project.add_python()
    result = project.source("admin_cidr", RADIO_ADMIN_CIDR=cidr)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{cidr}\n"


@pytest.mark.parametrize(("current", "drifted"), [("203.0.113.99", True), ("203.0.113.7", False)])
def test_admin_ip_drift_is_reported_with_a_hint(
    project: Project, current: str, drifted: bool
) -> None:
    """A fake curl plays checkip.amazonaws.com; the saved CIDR no longer holds the address."""
    project.add_python()
    project.stub("curl", f"echo {current}")
    result = project.source(f"admin_drift_hint {ADMIN}")
    assert result.returncode == 0, result.stderr
    hint = f"RADIO_ADMIN_CIDR={current}/32 ./deploy.sh"
    assert (hint in result.stderr) is drifted, result.stderr
    assert (f"{current} is outside admin_cidr {ADMIN}" in result.stderr) is drifted


# --- the whole deploy, with stubs ---------------------------------------------------

TUNNEL_STUB = """
wait_for_ssh() { echo "wait-ssh $*" >>"$FAKE_LOG"; }
smoke_test() { echo "smoke $*" >>"$FAKE_LOG"; }
registry_tunnel() { echo "tunnel $*" >>"$FAKE_LOG"; REGISTRY_URL="$TEST_REGISTRY_URL"; }
"""
# The registry import is tested against a real tracking server below; elsewhere recorded.
NETWORK_STUBS = TUNNEL_STUB + """
sync_registry() { echo "sync-registry $*" >>"$FAKE_LOG"; }
"""


def test_deploy_runs_every_step_in_order(project: Project, sts_endpoint: str) -> None:
    project.all_tools()
    project.add_credentials()
    key = project.add_key()
    release = project.commit()
    result = project.source(
        NETWORK_STUBS + "main deploy -e radio_max_upload_mb=30",
        RADIO_ADMIN_CIDR=ADMIN,
        AWS_ENDPOINT_URL_STS=sts_endpoint,
    )
    assert result.returncode == 0, result.stderr
    state = project.root / ".deploy"
    tfvars = state / "terraform.tfvars.json"
    assert project.calls() == [
        "terraform init -input=false",
        f"terraform apply -input=false -auto-approve -var-file={tfvars}",
        "terraform output -json",
        "wait-ssh 198.51.100.10 198.51.100.20",
        f"ansible-playbook -i {state}/inventory.ini mlflow.playbook.yml -e @{state}/registry.json"
        " -e radio_max_upload_mb=30",
        f"ansible-playbook -i {state}/inventory.ini app.playbook.yml -e @{state}/registry.json"
        " -e radio_max_upload_mb=30",
        "sync-registry 198.51.100.20",
        "smoke https://198-51-100-10.sslip.io/health --allow-self-signed",
    ]
    secrets = state / "registry.json"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert len(json.loads(secrets.read_text())["radio_registry_admin_password"]) >= 24
    assert result.stdout.splitlines()[:2] == [
        "FrontEnd Application: https://198-51-100-10.sslip.io",
        "Mlflow app address: http://198.51.100.20:8000",
    ]
    assert "AWS account 123456789012" in result.stderr
    # Signed with the [awslearnerlab] profile of .aws/_credentials, nothing else.
    assert [h.split("Credential=")[1][:20] for h in FakeSts.signers] == ["ASIATESTTESTTESTTEST"]

    pubkey = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert json.loads(tfvars.read_text()) == {
        "admin_cidr": ADMIN,
        "aws_profile": "awslearnerlab",
        "region": "us-east-1",
        "credentials_file": ".aws/_credentials",
        "ssh_public_key": pubkey,
        "existing_key_name": None,
    }
    inventory = (state / "inventory.ini").read_text()
    assert f"radio_release={release}\n" in inventory
    assert "radio_mlflow_private_ip=172.31.20.5\n" in inventory
    assert f"ansible_ssh_private_key_file={key}\n" in inventory

    with tarfile.open(state / "radio-src.tar.gz") as archive:
        names = set(archive.getnames())
    assert "deploy.sh" in names and "deploy/inventory.py" in names
    assert not {".aws/key.pem", ".aws/_credentials"} & names, "secrets must never ship"


@pytest.mark.slow
def test_host_promotions_survive_a_second_deploy(project: Project, sts_endpoint: str,
                                                 tmp_path: Path) -> None:
    """The real import (lifecycle/shipped.py) against a real tracking server with basic auth
    (mlflow/tracking_server.sh) standing in for the host's: a second ./deploy.sh leaves a promotion
    made on the host where it is, and imports nothing twice."""
    import secrets as tokens

    import helpers

    from lifecycle import model_versions as reg

    project.all_tools()
    project.add_credentials()
    project.add_key()
    shutil.copytree(ROOT / "mlflow", project.root / "mlflow",
                    ignore=shutil.ignore_patterns("*.sh"))
    project.commit()
    password = tokens.token_urlsafe(24)
    state = project.root / ".deploy"
    state.mkdir()
    (state / "registry.json").write_text(json.dumps({"radio_registry_admin_password": password}))
    port = helpers.free_port()
    server = helpers.start(
        ["bash", "mlflow/tracking_server.sh"],
        helpers.server_env(RADIO_REGISTRY_DIR=str(tmp_path / "host"), RADIO_REGISTRY_PORT=str(port),
                           MLFLOW_AUTH_ADMIN_PASSWORD=password),
        ROOT / "test-output" / "logs" / "deploy-registry.log")
    url = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL_STS": sts_endpoint, "RADIO_ADMIN_CIDR": ADMIN,
           "TEST_REGISTRY_URL": url}
    try:
        helpers.wait_until(f"{url}/health", server, 180, lambda r: r.ok)
        first = project.source(TUNNEL_STUB + "main deploy", **env)
        assert first.returncode == 0, first.stderr
        assert "tunnel 198.51.100.20" in project.calls()
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = (
            "admin", password)
        host = reg.client(url)
        versions = host.search_model_versions("name='radio-cxr'")
        shipped = reg.client(f"sqlite:///{ROOT / 'mlflow' / 'mlflow.db'}")
        n_shipped = len(shipped.search_model_versions("name='radio-cxr'"))
        assert len(versions) == n_shipped  # every shipped version, none twice
        shipped_prod = reg.alias_version(host, "radio-cxr", "production")
        # a version made on the host (a retraining there), promoted there
        prod_mv = host.get_model_version("radio-cxr", shipped_prod)
        other = str(host.create_model_version("radio-cxr", prod_mv.source,
                                              run_id=prod_mv.run_id).version)
        host.set_registered_model_alias("radio-cxr", "production", other)
        second = project.source(TUNNEL_STUB + "main deploy", **env)
        assert second.returncode == 0, second.stderr
        assert reg.alias_version(host, "radio-cxr", "production") == other
        assert len(host.search_model_versions("name='radio-cxr'")) == n_shipped + 1
    finally:
        os.environ.pop("MLFLOW_TRACKING_USERNAME", None)
        os.environ.pop("MLFLOW_TRACKING_PASSWORD", None)
        helpers.stop(server)


def test_rollback_runs_both_playbooks_without_a_release(
    project: Project, sts_endpoint: str
) -> None:
    project.all_tools()
    project.add_credentials()
    project.add_key()
    result = project.source(NETWORK_STUBS + "main rollback", AWS_ENDPOINT_URL_STS=sts_endpoint)
    assert result.returncode == 0, result.stderr
    state = project.root / ".deploy"
    assert project.calls() == [
        "terraform output -json",
        "wait-ssh 198.51.100.10 198.51.100.20",
        f"ansible-playbook -i {state}/inventory.ini mlflow.playbook.yml -e @{state}/registry.json"
        " -e radio_rollback=true",
        f"ansible-playbook -i {state}/inventory.ini app.playbook.yml -e @{state}/registry.json"
        " -e radio_rollback=true",
        "smoke https://198-51-100-10.sslip.io/health --allow-self-signed",
    ]
    inventory = (state / "inventory.ini").read_text()
    assert "radio_release" not in inventory and "radio_src_archive" not in inventory


def test_deploy_places_the_data_sources_on_both_hosts(
    project: Project, sts_endpoint: str
) -> None:
    """RADIO_DATA (default ../shared/data) is packed once and passed to both playbooks, which
    unpack it for the gate (val splits) and the drift reference (train splits)."""
    project.all_tools()
    project.link("tar")
    project.link("gzip")
    project.add_credentials()
    project.add_key()
    project.commit()
    data = project.root.parent / "data"
    (data / "hannover-covid" / "val" / "Covid").mkdir(parents=True)
    (data / "hannover-covid" / "val" / "Covid" / "a.png").write_bytes(b"png")
    result = project.source(NETWORK_STUBS + "main deploy", RADIO_ADMIN_CIDR=ADMIN,
                            AWS_ENDPOINT_URL_STS=sts_endpoint, RADIO_DATA=str(data))
    assert result.returncode == 0, result.stderr
    state = project.root / ".deploy"
    playbooks = [c for c in project.calls() if c.startswith("ansible-playbook")]
    assert playbooks == [
        f"ansible-playbook -i {state}/inventory.ini {book} -e @{state}/registry.json"
        f" -e radio_data_archive={state}/radio-data.tar.gz"
        for book in ("mlflow.playbook.yml", "app.playbook.yml")]
    with tarfile.open(state / "radio-data.tar.gz") as archive:
        assert "./hannover-covid/val/Covid/a.png" in archive.getnames()
    # Without data: said so, and nothing passed.
    result = project.source(NETWORK_STUBS + "main deploy", RADIO_ADMIN_CIDR=ADMIN,
                            AWS_ENDPOINT_URL_STS=sts_endpoint, RADIO_DATA=str(data / "none"))
    assert result.returncode == 0, result.stderr
    assert "deploy-ready and data-drift will fail on the hosts" in result.stderr


def test_rerun_remembers_the_admin_cidr(project: Project, sts_endpoint: str) -> None:
    project.all_tools()
    project.add_credentials()
    project.add_key()
    project.commit()
    first = project.source(
        NETWORK_STUBS + "main deploy", RADIO_ADMIN_CIDR=ADMIN, AWS_ENDPOINT_URL_STS=sts_endpoint
    )
    assert first.returncode == 0, first.stderr
    tfvars = project.root / ".deploy" / "terraform.tfvars.json"
    before = tfvars.read_text()
    # No RADIO_ADMIN_CIDR and no curl on PATH: the saved value must be used.
    second = project.source(NETWORK_STUBS + "main deploy", AWS_ENDPOINT_URL_STS=sts_endpoint)
    assert second.returncode == 0, second.stderr
    assert tfvars.read_text() == before
    assert project.calls().count("terraform init -input=false") == 2


def test_domain_and_model_servers_are_passed_and_remembered(project: Project) -> None:
    project.add_python()
    tfvars = project.root / ".deploy" / "terraform.tfvars.json"
    script = "write_tfvars 203.0.113.7/32"
    first = project.source(script, RADIO_DOMAIN="radio.example.org", RADIO_MODEL_SERVERS="3")
    assert first.returncode == 0, first.stderr
    saved = json.loads(tfvars.read_text())
    assert saved["domain_name"] == "radio.example.org" and saved["model_server_count"] == 3
    # A re-run without the variables keeps both (no silent scale-down).
    assert project.source(script).returncode == 0
    assert json.loads(tfvars.read_text()) == saved
    bad = project.source(script, RADIO_MODEL_SERVERS="11")
    assert errors(bad) == ["RADIO_MODEL_SERVERS=11 is not a number from 1 to 10"]


def test_plan_with_an_existing_key_pair(project: Project, sts_endpoint: str) -> None:
    project.all_tools()
    (project.bin / "ssh-keygen").unlink()  # not needed: no key to derive
    project.add_credentials()
    result = project.run(
        "plan",
        RADIO_ADMIN_CIDR=ADMIN,
        RADIO_EXISTING_KEY_NAME="vockey",
        AWS_ENDPOINT_URL_STS=sts_endpoint,
    )
    assert result.returncode == 0, result.stderr
    tfvars = json.loads((project.root / ".deploy" / "terraform.tfvars.json").read_text())
    assert tfvars["existing_key_name"] == "vockey" and tfvars["ssh_public_key"] is None
    assert project.calls()[-1] == (
        f"terraform plan -input=false -var-file={project.root}/.deploy/terraform.tfvars.json"
    )


def test_destroy_asks_unless_told_not_to(project: Project, sts_endpoint: str) -> None:
    project.all_tools()
    project.add_credentials()
    env = {"AWS_ENDPOINT_URL_STS": sts_endpoint}
    assert project.run("destroy", **env).returncode == 0
    assert project.calls()[-1].endswith("terraform.tfvars.json")  # no -auto-approve
    assert project.run("destroy", RADIO_AUTO_APPROVE="1", **env).returncode == 0
    assert project.calls()[-1].endswith(" -auto-approve")


def test_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (.ci/deploy-deps.sh installs it)")
    result = run(
        [shellcheck, "-x", "--severity=style", str(SCRIPT), str(ROOT / "deploy" / "mlflow_host.sh"),
         str(ROOT / ".ci" / "deploy-deps.sh")]
    )
    assert result.returncode == 0, result.stdout


def test_script_is_executable_and_strict() -> None:
    assert os.stat(SCRIPT).st_mode & stat.S_IXUSR
    assert "\nset -euo pipefail\n" in SCRIPT.read_text()
