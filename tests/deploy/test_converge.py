"""Both playbooks applied for real, twice, in a throwaway Debian system (systemd-nspawn).

The second run must report no change, the data volume (a loop device) must be
mounted on /var/lib/radio, and the services must answer. Needs root,
systemd-nspawn and what tests/deploy/converge/prepare.sh makes (a Debian tree and a
wheel directory); skipped otherwise. Slow: minutes per playbook.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from deploy_helpers import HERE, ROOT, run

pytestmark = pytest.mark.slow

CONVERGE = HERE / "converge"
# The frontend's Prometheus must have loaded every rule of the role's file.
ALERTS = yaml.safe_load((ROOT / "roles/radio_monitoring/files/radio-alerts.yml").read_text())
DIR = Path(os.environ.get("RADIO_CONVERGE_DIR", "/var/tmp/radio-converge"))


@pytest.fixture(scope="module")
def prepared() -> tuple[Path, Path]:
    if os.geteuid() != 0:
        pytest.skip("systemd-nspawn needs root")
    for tool in ("systemd-nspawn", "nsenter", "git"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (tests/deploy/converge/prepare.sh installs it)")
    rootfs, wheels = DIR / "rootfs", DIR / "wheels"
    if not (rootfs / "usr/bin/python3").exists() or not any(wheels.glob("*.whl")):
        pytest.skip(f"no Debian tree and wheels in {DIR}: run tests/deploy/converge/prepare.sh")
    return rootfs, wheels


def recap(log: str, host: str) -> dict[str, int]:
    line = re.search(rf"^{host}\s+:(.*)$", log, re.M)
    assert line, log[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line[1])}


@pytest.mark.parametrize(
    ("playbook", "host", "answers"),
    [
        ("mlflow.playbook.yml", "radio-mlflow",
         ["ping 200", "model metrics True", "node exporter True"]),
        ("app.playbook.yml", "radio-frontend",
         ["health ok", "redirect 301", "prometheus app up node up",
          f"alert rules {len(ALERTS['groups'][0]['rules'])}"]),
    ],
)
def test_playbook_converges_twice_and_the_service_answers(
    prepared: tuple[Path, Path], tmp_path: Path, playbook: str, host: str, answers: list[str]
) -> None:
    rootfs, wheels = prepared
    result = run(
        ["bash", str(CONVERGE / "converge.sh"), playbook, str(rootfs), str(wheels), str(tmp_path)],
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    first = recap((tmp_path / "converge-1.log").read_text(), host)
    second = recap((tmp_path / "converge-2.log").read_text(), host)
    assert first["failed"] == 0 and first["changed"] > 0, first
    assert second["failed"] == 0 and second["unreachable"] == 0, second
    assert second["changed"] == 0, (tmp_path / "converge-2.log").read_text()[-5000:]
    assert (tmp_path / "answer.txt").read_text().split("\n")[: len(answers)] == answers
    # A loop device stood in for the EBS data volume: formatted once, mounted on the state dir.
    source, fstype = (tmp_path / "mount.txt").read_text().split()
    assert source.startswith("/dev/loop") and fstype == "ext4"
    if host == "radio-frontend":
        # No public name here: Let's Encrypt is not asked, and the fallback is announced.
        assert (
            "WARNING: HTTPS uses a SELF-SIGNED certificate"
            in (tmp_path / "converge-1.log").read_text()
        )
