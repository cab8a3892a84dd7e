"""The scale-out model tier on loopback (bench/scale.py): losing a server loses no request.

Asserts the failures only, never the throughput (``make bench-scale`` prints that).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import scale

pytestmark = pytest.mark.slow


def test_killing_one_of_two_model_servers_fails_no_request(monkeypatch) -> None:
    if not any(scale.DATA.glob("*/val/*/*")):
        pytest.skip(f"no validation X-rays under {scale.DATA}")
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is not installed (.ci/deploy-deps.sh installs it)")
    killed: list[int] = []
    original = scale.Cluster.kill_server

    def kill_and_record(self: scale.Cluster, index: int) -> None:
        original(self, index)
        killed.append(self.servers[index][1].wait(timeout=10))  # type: ignore[attr-defined]

    monkeypatch.setattr(scale.Cluster, "kill_server", kill_and_record)
    results = scale.run(seconds=10, clients=3, kill_only=True)
    run = results["servers_2_one_killed"]
    assert killed == [-9], "the second server must really have died mid-run"
    assert run["requests"] > 0
    assert run["failed"] == 0, run["failures_by_status"]
