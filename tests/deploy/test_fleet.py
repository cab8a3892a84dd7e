"""Two model servers following one registry, as the scale-out tier runs them (issue 29).

The MLflow host: the rendered radio-registry unit (mlflow/tracking_server.sh: MLflow with
authentication, SQLite) listening on the private network, holding the shipped versions
imported by ``python -m lifecycle import-shipped`` as ./deploy.sh does. Two instances
(fleet.py: a network and a mount namespace each, on one bridge) boot as the user data
leaves a host: nginx with the role's proxy site, then the radio-model unit's ExecStart
(``python -m lifecycle.follow``) with the rendered model.env, which names the MLflow host's
registry; no operator step. bench/scale.Proxy (nginx in front of their port 8000) stands in
for the internal load balancer, and two clients send the follower's synthetic probe image
(never a patient image) to its /invocations throughout. Asserted:

(a) both servers answer with the registry's ``production`` version;
(b) ``python -m lifecycle force`` moves the alias: both servers switch, no request fails,
    and every request sent once both have stopped their old scoring server names the new
    version;
(c) one instance crashes (every process SIGKILLed, its address gone); a new one booted the
    same way serves ``production`` by itself and answers the balancer's requests again,
    and no request through the balancer fails.

One stand-in: RADIO_FOLLOW_RELOAD names the instance's nginx reload (on the hosts a systemd
path unit, radio-model-proxy.path, reloads nginx when the upstream file changes).
Needs root (namespaces), nginx, ansible-playbook; about 3 minutes on 2 shared cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from deploy_helpers import parse_unit, read_env_file, render_templates
from fleet import SYSTEMD_PATH, Instance, Subnet
from helpers import ROOT, server_env
from load_helpers import Load, Send, runs, wait_for
from proxy_helpers import private_nginx

from bench import procs, scale
from lifecycle import events
from lifecycle import model_versions as reg
from lifecycle.follow import answering_version, probe_body

pytestmark = pytest.mark.slow

CLIENTS = 2
# Between a client's requests: continuous load that leaves the starting scoring servers
# some CPU on a 2-core machine (without it a switch takes minutes there).
PAUSE_S = 0.2
LOGS = ROOT / "test-output" / "logs" / "fleet"
NAME = "radio-cxr"


def invocations(url: str) -> Send:
    """The probe image to ``url``'s /invocations; (status, version of the answer)."""
    body = probe_body()

    def send(session: requests.Session, n: int) -> tuple[object, str]:
        r = session.post(f"{url}/invocations", json=body, timeout=120)
        if r.status_code != 200:
            return r.status_code, ""
        return 200, str(r.json()["predictions"][0]["model"]["version"])

    return send


def switched(instance: Instance) -> list[str]:
    """The versions an instance's follower switched to, in order (its own event log)."""
    return [e["version"] for e in events.read(instance.folder / "lifecycle" / "events.jsonl")
            if e["action"] == "switched"]


def scored(instance: Instance) -> int:
    """How many /invocations its scoring servers answered (their uvicorn access logs)."""
    return sum(log.read_text(errors="replace").count('"POST /invocations HTTP/1.1" 200')
               for log in (instance.folder / "logs").glob("model-*.log"))


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def lifecycle_cli(args: list[str], env: dict[str, str]) -> dict:
    """``python -m lifecycle --json ...`` as the operator runs it; its JSON result."""
    done = subprocess.run([sys.executable, "-m", "lifecycle", "--json", *args], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture
def subnet():
    if os.geteuid() != 0:
        pytest.skip("network and mount namespaces need root")
    for tool in ("ip", "unshare", "mount"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (.ci/run installs it)")
    net = Subnet()
    try:
        yield net
    finally:
        net.close()


def test_two_servers_follow_one_registry_through_a_promotion_and_a_crash(subnet, tmp_path,
                                                                         monkeypatch):
    t0 = time.monotonic()
    password = secrets.token_urlsafe(16)
    port = procs.free_port()
    registry_url = f"http://{subnet.gateway}:{port}"
    state = tmp_path / "state"  # the hosts' /var/lib/radio
    out = render_templates(
        tmp_path / "render" / "out", radio_registry_url=registry_url,
        radio_registry_listen=subnet.gateway, radio_model_registry_port=port,
        radio_registry_admin_password=password, radio_common_state_dir=str(state),
        radio_common_src=str(ROOT), radio_common_venv=str(Path(sys.executable).parent.parent),
        radio_model_drain_s=2)
    t_rendered = time.monotonic()
    model_env = read_env_file(out / "model.env")
    assert model_env["MLFLOW_TRACKING_URI"] == registry_url  # the MLflow host's, not its own
    model_unit = parse_unit(out / "radio-model.service")["Service"]
    registry_unit = parse_unit(out / "radio-registry.service")["Service"]
    registry_env = read_env_file(out / "registry.env")
    Path(registry_unit["WorkingDirectory"]).mkdir(parents=True)
    Path(registry_env["TMPDIR"]).mkdir(parents=True)
    ops_env = server_env(PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=registry_url,
                         MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=password,
                         RADIO_LIFECYCLE_LOG=str(tmp_path / "operator-events.jsonl"))
    instances: list[Instance] = []
    proxy = load = None
    with contextlib.ExitStack() as cleanup:
        registry = procs.start(shlex.split(registry_unit["ExecStart"]),
                               {"PATH": SYSTEMD_PATH} | registry_env, LOGS / "registry.log",
                               Path(registry_unit["WorkingDirectory"]))
        cleanup.callback(procs.stop, registry)
        cleanup.callback(lambda: [i.kill() for i in instances])
        procs.wait_until(f"{registry_url}/health", registry, 180)
        t_registry_up = time.monotonic()

        def boot(index: int, folder: Path) -> Instance:
            instance = Instance(subnet, index, folder)
            instances.append(instance)
            nginx = private_nginx(folder.parent / f"{folder.name}-nginx",
                                  out / "radio-model.conf", check=False)
            env = model_env | {"RADIO_FOLLOW_RELOAD": shlex.join([*nginx, "-s", "reload"])}
            instance.boot(state, nginx, shlex.split(model_unit["ExecStart"]),
                          Path(model_unit["WorkingDirectory"]), env)
            return instance

        def serving(group: list[Instance], version: str, what: str) -> None:
            wait_for(lambda: all(answering_version(i.url, 10) == version for i in group),
                     [i.proc for i in group], 300, what, procs.log_tail)

        # A first deploy: the instances boot while ./deploy.sh imports the shipped versions
        # (their followers wait for a production alias).
        a, b = boot(0, tmp_path / "instance-0"), boot(1, tmp_path / "instance-1")
        # ./deploy.sh's import, and a second version (same files) for the promotion
        shipped = tmp_path / "shipped" / "mlflow"
        shutil.copytree(ROOT / "mlflow", shipped, ignore=shutil.ignore_patterns("*.sh"))
        first = lifecycle_cli(["import-shipped", "--from", str(shipped), "--to", registry_url],
                              ops_env)["production"]
        assert first is not None
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            monkeypatch.setenv(key, ops_env[key])
        host = reg.client(registry_url)
        mv = host.get_model_version(NAME, first)
        new = str(host.create_model_version(NAME, mv.source, run_id=mv.run_id).version)
        assert new != first
        t_registry = time.monotonic()

        serving([a, b], first, "answers of the first version from both servers")
        t_up = time.monotonic()

        # (a) one production alias, the same version from both servers and the balancer
        assert reg.alias_version(host, NAME, "production") == first
        assert [answering_version(a.url), answering_version(b.url)] == [first, first]
        proxy = scale.Proxy(tmp_path, [f"{a.address}:8000", f"{b.address}:8000"])
        cleanup.callback(proxy.stop)
        assert {answering_version(proxy.url) for _ in range(4)} == {first}

        # (b) a promotion under load
        load = Load(invocations(proxy.url), CLIENTS, PAUSE_S)
        load.start()
        cleanup.callback(load.stop)
        wait_for(lambda: load.count() >= 4, [a.proc, b.proc], 120, "first answers")
        t_promoted = time.monotonic()
        lifecycle_cli(["--by", "test", "force", new, "--reason", "fleet test"], ops_env)
        wait_for(lambda: switched(a)[-1:] == switched(b)[-1:] == [new], [a.proc, b.proc], 300,
                 "both followers switched", procs.log_tail)
        t_switched = time.monotonic()
        t_promotion = t_switched - t_promoted
        n = load.count()
        wait_for(lambda: load.count() >= n + 6, [a.proc, b.proc], 120, "answers after it")

        # (c) a crash, and a replacement that boots by itself
        killed = a.kill()
        instances.remove(a)
        assert killed and not [pid for pid in killed if alive(pid)]
        n = load.count()
        wait_for(lambda: load.count() >= n + 4, [b.proc], 120, "answers from the other server")
        t_replaced = time.monotonic()
        c = boot(0, tmp_path / "instance-0-replacement")
        serving([c], new, "answers from the replacement")
        t_replacement = time.monotonic() - t_replaced
        # the balancer sends it requests again (nobody else calls it now)
        n = scored(c)
        wait_for(lambda: scored(c) >= n + 4, [b.proc, c.proc], 120,
                 "balanced requests answered by the replacement", procs.log_tail)
        load.stop()
        t_end = time.monotonic()

        failures = load.failures()
        versions = [r[2] for r in load.results]
        print(f"\nrender {t_rendered - t0:.0f} s, registry {t_registry_up - t_rendered:.0f} s, "
              f"import {t_registry - t_registry_up:.0f} s, until both serve "
              f"{t_up - t_registry:.0f} s more; promotion -> "
              f"both switched {t_promotion:.0f} s; replacement boot {t_replacement:.0f} s; "
              f"total {t_end - t0:.0f} s. {len(load.results)} requests, {len(failures)} "
              f"failed; versions in order: {runs(versions)}")
        assert failures == []
        assert {r[2] for r in load.results if r[0] >= t_switched} == {new}
        assert versions[0] == first
        assert switched(b) == [first, new] and switched(c) == [new]
        assert reg.alias_version(host, NAME, "production") == new
        assert answering_version(b.url) == answering_version(c.url) == new
