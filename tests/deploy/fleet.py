"""Hosts of the scale-out tier on one machine, for tests/deploy/test_fleet.py (no test
logic here).

An *instance* is a network namespace on one bridge (the private subnet; this machine's
own side of it plays the MLflow host) and, inside it, a mount namespace where the
instance's own folder is bind-mounted on the state directory the rendered templates name
(``/var/lib/radio`` on the hosts). So one set of rendered files (model.env, the
radio-model unit, the proxy site) serves every instance, as the launch template's user
data and variables serve every Auto Scaling instance, while each instance has its own
disk, its own loopback and the hosts' real ports (nginx on 8000, scoring servers on 8001
and 8002). Needs root (``ip netns``, ``mount``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from bench import procs

# What the user data leaves behind once mlflow.playbook.yml has run (roles/radio_model/
# tasks/main.yml: the directories, the first upstream, nginx with the proxy site), then
# what systemd starts: radio-model.service's ExecStart in its WorkingDirectory, with its
# EnvironmentFile (given as the environment). Arguments: state dir, the instance's own
# folder, nginx's start command's length and words, then the unit's ExecStart.
BOOT = r"""set -eu
state=$1 own=$2 n=$3
shift 3
mount --bind "$own" "$state"
mkdir -p "$state/tmp" "$state/proxy" "$state/models" "$state/logs" "$state/lifecycle"
upstream="$state/proxy/model-upstream.conf"
[ -e "$upstream" ] || printf 'server 127.0.0.1:%s;\n' "${RADIO_FOLLOW_PORTS%%,*}" >"$upstream"
nginx=()
for _ in $(seq "$n"); do nginx+=("$1"); shift; done
"${nginx[@]}" -t -q
"${nginx[@]}"
exec "$@"
"""

SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _free_subnet() -> str:
    """A 10.x.y.0/24 prefix no interface of this machine uses ("10.x.y")."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True,
                          check=True).stdout
    for third in range(os.getpid() % 200, os.getpid() % 200 + 50):
        prefix = f"10.231.{third % 250}"
        if f" {prefix}." not in used:
            return prefix
    raise RuntimeError("no free 10.231.x.0/24 subnet")


class Subnet:
    """A bridge with this machine at ``.1``: the private network of the instances."""

    def __init__(self) -> None:
        self.tag = f"{os.getpid() % 100000}"
        self.bridge = f"rfb{self.tag}"
        self.prefix = _free_subnet()
        self.gateway = f"{self.prefix}.1"
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)


class Instance:
    """One model server host: ``.boot()`` starts it, ``.kill()`` makes it vanish."""

    def __init__(self, subnet: Subnet, index: int, folder: Path):
        self.subnet, self.index = subnet, index
        self.name = f"rf{subnet.tag}-{index}"
        self.address = f"{subnet.prefix}.{10 + index}"
        self.url = f"http://{self.address}:8000"
        self.folder = folder  # its disk
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True)
        _ip("netns", "add", self.name)
        veth = f"rfv{subnet.tag}{index}"
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", self.name)
        _ip("link", "set", veth, "master", subnet.bridge)
        _ip("link", "set", veth, "up")
        _ip("-n", self.name, "addr", "add", f"{self.address}/24", "dev", "eth0")
        _ip("-n", self.name, "link", "set", "eth0", "up")
        _ip("-n", self.name, "link", "set", "lo", "up")
        _ip("-n", self.name, "route", "add", "default", "via", subnet.gateway)

    def boot(self, state: Path, nginx: list[str], exec_start: list[str], workdir: Path,
             env: dict[str, str]) -> subprocess.Popen:
        """Start nginx and the unit's ExecStart inside the instance, with no other step."""
        self.proc = procs.start(
            ["ip", "netns", "exec", self.name, "unshare", "--mount", "--propagation",
             "private", "bash", "-c", BOOT, "boot", str(state), str(self.folder),
             str(len(nginx)), *nginx, *exec_start],
            {"PATH": SYSTEMD_PATH} | env, self.folder.parent / f"{self.folder.name}.log",
            workdir)
        return self.proc

    def pids(self) -> list[int]:
        """Every process in the instance's network namespace."""
        out = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True,
                             text=True, check=False).stdout
        return [int(p) for p in out.split()]

    def kill(self) -> list[int]:
        """SIGKILL everything it runs (a crash, not a shutdown), then remove its network:
        its address stops answering at all. Returns the pids it had."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            procs.stop(self.proc)  # reaps it (already dead) and closes its log
        end = time.monotonic() + 30
        while self.pids() and time.monotonic() < end:
            time.sleep(0.1)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
        return pids
