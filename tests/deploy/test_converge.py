"""Both playbooks applied for real, twice, in a throwaway Debian system (systemd-nspawn).

The second run must report no change, the data volume (a loop device) must be
mounted on /var/lib/radio, and the services must answer. Needs root,
systemd-nspawn and what tests/deploy/converge/prepare.sh makes (a Debian tree and a
wheel directory); skipped otherwise. Slow: minutes per playbook.
"""

from __future__ import annotations

import json
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


def test_every_scheduled_job_succeeds_on_a_fresh_deployment(
    prepared: tuple[Path, Path], real_sources: list[Path], tmp_path: Path
) -> None:
    """Both playbooks on one system as deploy.sh applies them (the model host's, then the
    frontend's, with the data sources placed: a few real films of each source and split),
    then every scheduled job once through its real systemd unit: each exits 0. The admin
    page's listing goes to the one registry (the MLflow host's, logged in), the prepared
    candidate meets the gate on the placed val splits (promoted or refused, not an error),
    the drift reference is built from the placed train splits for whatever production is
    after that, and the model-drift card is found on a freshly imported registry. The
    frontend's playbook applied again afterwards changes nothing."""
    from sources_subset import copy_subset

    rootfs, wheels = prepared
    data = copy_subset(real_sources, tmp_path / "data")
    result = run(
        ["bash", str(CONVERGE / "converge.sh"), "jobs", str(rootfs), str(wheels),
         str(tmp_path / "out"), str(data)],
        timeout=3600,
    )
    logs = "".join((tmp_path / "out" / f).read_text()[-3000:] for f in ("jobs.log",)
                   if (tmp_path / "out" / f).exists())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:] + logs
    out = json.loads((tmp_path / "out" / "jobs.json").read_text())
    assert out["app_registry"] == {
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000", "MLFLOW_TRACKING_USERNAME": "admin",
        "RADIO_DRIFT_DATA": "/var/lib/radio/sources",
        "RADIO_DRIFT_REFERENCE": "/var/lib/radio/monitoring/drift-reference.npz"}
    # the admin page's listing: the host's registry, whose production is the shipped one
    assert len(out["listed_production"]) == 1
    journals = {job: (tmp_path / "out" / f"journal-{job}.txt").read_text()[-2000:]
                for job in out["units"]}
    assert out["units"] == {job: {"rc": 0, "result": "success"} for job in
                            ("deploy-ready", "data-drift", "model-drift", "healthcheck")}, journals
    events = {e["job"]: e for e in out["events"]}
    assert {job: e["ok"] for job, e in events.items()} == {
        "deploy-ready": True, "data-drift": True, "model-drift": True, "healthcheck": True}
    # the gate judged the candidate on the placed data: not "no candidate", not an error
    assert events["deploy-ready"]["detail"] in ("deployed", "refused"), events
    production = (out["candidate"] if events["deploy-ready"]["detail"] == "deployed"
                  else out["listed_production"][0])
    assert out["reference"] is True
    assert {k: r["model_version"] for k, r in out["reports"].items()} == {
        "data": production, "model": production}
    # the frontend's playbook again, data placed and jobs run: nothing changes
    again = recap((tmp_path / "out" / "converge-3.log").read_text(), "radio-frontend")
    assert again["failed"] == 0 and again["changed"] == 0, (
        tmp_path / "out" / "converge-3.log").read_text()[-5000:]
