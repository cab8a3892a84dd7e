"""Reproducible installs: every host installs from a committed constraints file."""

from __future__ import annotations

import re
import shutil
import tomllib

import pytest
import yaml
from deploy_helpers import ROOT, run

CONSTRAINTS = ROOT / "deploy" / "constraints"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)$")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(name: str) -> dict[str, str]:
    found = {}
    for line in (CONSTRAINTS / f"{name}.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            match = PIN.match(line)
            assert match, f"{name}.txt: {line!r} is not an exact pin"
            found[normalize(match[1])] = match[2]
    return found


def declared(*extras: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    names = {normalize(re.match(r"[A-Za-z0-9._-]+", spec)[0]) for spec in specs}
    return names - {"radio"}


@pytest.mark.parametrize(("lock", "extras"), [("web", ()), ("serve", ("serve",)),
                                              ("registry", ("serve", "registry"))])
def test_every_dependency_is_pinned(lock: str, extras: tuple[str, ...]) -> None:
    """Fails when pyproject.toml gains a dependency: re-run `bash deploy/lock.sh`."""
    missing = declared(*extras) - set(pins(lock))
    assert not missing, f"deploy/constraints/{lock}.txt lacks {sorted(missing)}: run deploy/lock.sh"


def test_the_model_host_lock_has_no_tensorflow() -> None:
    serve = pins("serve")
    assert "onnxruntime" in serve and "mlflow-skinny" in serve
    assert not {"tensorflow", "tensorflow-cpu", "tf2onnx", "mlflow"} & set(serve)


@pytest.mark.parametrize(("a", "b"), [("web", "serve"), ("web", "registry"),
                                      ("serve", "registry")])
def test_locks_agree_on_shared_packages(a: str, b: str) -> None:
    one, two = pins(a), pins(b)
    differ = {name: (one[name], two[name]) for name in one.keys() & two.keys()}
    # Forced by MLflow's server on the registry host only (its own requirements):
    # gunicorn<27 (mlflow) and python-dateutil<3 (graphene); other hosts take the newest.
    forced = {"gunicorn", "python-dateutil"} if "registry" in (a, b) else set()
    assert {k: v for k, v in differ.items() if v[0] != v[1] and k not in forced} == {}


def test_the_registry_lock_has_the_server_and_its_auth_but_no_tensorflow() -> None:
    registry = pins("registry")
    assert {"mlflow", "flask-wtf", "onnxruntime"} <= set(registry)
    assert not {"tensorflow", "tensorflow-cpu", "tf2onnx"} & set(registry)


def test_roles_install_with_the_lock_of_their_extra() -> None:
    defaults = yaml.safe_load((ROOT / "roles/radio_common/defaults/main.yml").read_text())
    template = defaults["radio_common_constraints"]
    assert "radio_common_pip_extras | regex_replace('[][]', '') or 'web'" in template
    tasks = yaml.safe_load((ROOT / "roles/radio_common/tasks/release.yml").read_text())
    install = next(t for t in tasks if t["name"].startswith("Install the release"))
    argv = install["ansible.builtin.command"]["argv"]
    assert argv[argv.index("--constraint") + 1].endswith("/{{ radio_common_constraints }}")
    # The link moves only after the install and both checks.
    names = [t["name"] for t in tasks]
    switch = names.index("Switch the current link to the release")
    for step in (
        "Install the release into its virtualenv (pinned by {{ radio_common_constraints }})",
        "Check the new release before switching to it",
        "Check the release's dependencies",
    ):
        assert names.index(step) < switch, step


def test_lock_script_is_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (.ci/deploy-deps.sh installs it)")
    result = run([shellcheck, "--severity=style", str(ROOT / "deploy" / "lock.sh")])
    assert result.returncode == 0, result.stdout
