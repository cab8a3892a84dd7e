"""Playbooks and roles: syntax, lint, builtin modules only, handlers and idempotence rules."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import ROOT, ansible_env, require, run

PLAYBOOKS = ("app.playbook.yml", "mlflow.playbook.yml")
ROLES = ROOT / "roles"
# Keys of a task that are not its module.
TASK_KEYWORDS = {
    "name", "when", "loop", "loop_control", "notify", "register", "become", "become_user",
    "changed_when", "failed_when", "until", "retries", "delay", "vars", "tags", "listen",
    "ignore_errors", "environment", "no_log", "check_mode", "delegate_to", "run_once",
}  # fmt: skip


def tasks_of(path: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text()) or []


def all_tasks() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(ROLES.glob("*/tasks/*.yml")) + sorted(ROLES.glob("*/handlers/*.yml")):
        found += [(f"{path.relative_to(ROOT)}: {t['name']}", t) for t in tasks_of(path)]
    return found


def module_of(task: dict[str, Any]) -> str:
    (module,) = set(task) - TASK_KEYWORDS
    return module


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(playbook: str, tmp_path: Path) -> None:
    tool = require("ansible-playbook")
    result = run(
        [tool, "--syntax-check", "-i", "localhost,", playbook], cwd=ROOT, env=ansible_env(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_syntax_check_catches_errors(tmp_path: Path) -> None:
    """Guards the test above: a play naming a missing role must fail the check."""
    tool = require("ansible-playbook")
    bad = tmp_path / "bad.yml"
    bad.write_text("- hosts: all\n  roles: [radio_nonexistent]\n")
    result = run([tool, "--syntax-check", "-i", "localhost,", str(bad)], env=ansible_env(tmp_path))
    assert result.returncode != 0


def test_ansible_lint_production_profile(tmp_path: Path) -> None:
    lint = require("ansible-lint")
    env = ansible_env(tmp_path)
    # Offline: never try to install collections or requirements.
    result = run(
        [lint, "--offline", "--profile", "production", "--nocolor", *PLAYBOOKS],
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


def test_only_builtin_modules() -> None:
    """No collection can be installed on the target's controller here: ansible.builtin only."""
    tasks = all_tasks()
    assert len(tasks) > 20
    for where, task in tasks:
        assert module_of(task).startswith("ansible.builtin."), where


def test_commands_are_idempotent() -> None:
    """A command either says when it changes something or runs once (creates)."""
    for where, task in all_tasks():
        if module_of(task) in {"ansible.builtin.command", "ansible.builtin.shell"}:
            args = task[module_of(task)]
            assert "creates" in args or "changed_when" in task, where


def test_every_notify_has_a_handler() -> None:
    for role in ("radio_web", "radio_model", "radio_monitoring"):
        handlers = tasks_of(ROLES / role / "handlers" / "main.yml")
        names = {h["name"] for h in handlers} | {h.get("listen") for h in handlers}
        notified = set()
        common = [] if role == "radio_monitoring" else sorted(
            (ROLES / "radio_common" / "tasks").glob("*.yml"))
        for path in common + sorted((ROLES / role / "tasks").glob("*.yml")):
            for task in tasks_of(path):
                value = task.get("notify", [])
                notified.update([value] if isinstance(value, str) else value)
        assert notified, role
        assert notified <= names, f"{role}: no handler for {notified - names}"


def test_code_changes_restart_both_services() -> None:
    for role, service in (("radio_web", "radio-web"), ("radio_model", "radio-model")):
        handlers = tasks_of(ROLES / role / "handlers" / "main.yml")
        restart = next(h for h in handlers if h["name"] == f"Restart {service}")
        assert restart["listen"] == "Radio code changed"
        assert restart["ansible.builtin.systemd_service"]["state"] == "restarted"


def test_nginx_is_checked_before_it_reloads() -> None:
    handlers = tasks_of(ROLES / "radio_web" / "handlers" / "main.yml")
    order = [h["name"] for h in handlers]
    check = order.index("Check the nginx configuration")
    assert handlers[check]["listen"] == "Reload nginx"
    assert handlers[check]["ansible.builtin.command"]["argv"][:2] == ["nginx", "-t"]
    assert check < order.index("Reload nginx")


def test_model_host_installs_the_registry_extra_without_tensorflow() -> None:
    play = tasks_of(ROOT / "mlflow.playbook.yml")[0]
    common = next(r for r in play["roles"] if r["role"] == "radio_common")
    assert common["vars"]["radio_common_pip_extras"] == "[registry]"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra in ("serve", "registry"):
        assert not any(dep.startswith(("tensorflow", "tf2onnx")) for dep in extras[extra])
    app_play = next(p for p in tasks_of(ROOT / "app.playbook.yml") if p["hosts"] == "frontend")
    assert [r["role"] for r in app_play["roles"]] == [
        "radio_common", "radio_web", "radio_monitoring"]
    # The frontend runs the monitoring jobs: ONNX Runtime and MLflow's client, no TensorFlow;
    # its release check imports the app and the jobs.
    frontend = next(r for r in app_play["roles"] if r["role"] == "radio_common")
    assert frontend["vars"]["radio_common_pip_extras"] == "[serve]"
    check = frontend["vars"]["radio_common_import_check"]
    assert "app" in check.split(", ") and "monitoring.drift_jobs" in check
    defaults = yaml.safe_load((ROLES / "radio_common" / "defaults" / "main.yml").read_text())
    assert defaults["radio_common_pip_extras"] == ""
    # One venv per release, reached through the current link.
    assert defaults["radio_common_venv"] == "{{ radio_common_src }}/.venv"
    assert defaults["radio_common_src"] == "{{ radio_common_root }}/current"
    assert defaults["radio_common_root"] == "/opt/radio"


def test_frontend_migrates_and_creates_the_first_admin_before_starting() -> None:
    tasks = tasks_of(ROLES / "radio_web" / "tasks" / "main.yml")
    names = [t["name"] for t in tasks]
    boot = names.index("Migrate the database and create the first admin on a new install")
    argv = tasks[boot]["ansible.builtin.command"]["argv"]
    assert argv[:3] == ["runuser", "-u", "{{ radio_common_user }}"]  # never as root
    assert "-m app.accounts.users bootstrap" in argv[-1] and "radio_web_env_file" in argv[-1]
    assert boot < names.index("Start the web app and nginx at boot and now")
    show = tasks[names.index("Show how to log in the first time")]
    assert "one-time password" in show["when"]


def test_only_the_mlflow_host_runs_the_promotion_job() -> None:
    """deploy-ready runs where the gate's data are placed (the MLflow host); a scaled-out
    model server, which follows the MLflow host's registry, runs none."""
    import jinja2

    play = yaml.safe_load((ROOT / "mlflow.playbook.yml").read_text())[0]
    expr = next(r["vars"]["radio_common_jobs"] for r in play["roles"]
                if r["role"] == "radio_common")
    template = jinja2.Environment().from_string(expr)
    assert yaml.safe_load(template.render()) == ["deploy-ready"]
    assert yaml.safe_load(template.render(radio_registry_url="http://10.0.1.23:5000")) == []
