"""The radio_monitoring role: its rendered Prometheus, node exporter and Grafana settings,
promtool on the rendered configuration, the model servers it scrapes (one host or an Auto
Scaling group), and how the playbooks and tasks use it.

The role converging on a real system (packages, services, idempotence) is
tests/deploy/test_converge.py; Prometheus scraping the real app is
tests/monitoring/test_prometheus.py.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import RENDER_VARS, ROOT, ansible_env, read_env_file, require, run

ROLE = ROOT / "roles" / "radio_monitoring"
MODEL_IP = RENDER_VARS["radio_mlflow_private_ip"]


def tasks(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((ROLE / "tasks" / name).read_text())


def task(name: str, title: str) -> dict[str, Any]:
    return next(t for t in tasks(name) if t["name"] == title)


def scrape_targets(config: dict[str, Any]) -> dict[str, list[str]]:
    return {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }


def test_prometheus_scrapes_the_app_locally_and_the_model_host_privately(rendered: Path) -> None:
    config = yaml.safe_load((rendered / "prometheus.yml").read_text())
    assert scrape_targets(config) == {
        "radio-app": ["127.0.0.1:9101"],  # the gunicorn master's port, never off loopback
        "radio-model": [f"{MODEL_IP}:9102"],
        "node": ["127.0.0.1:9100", f"{MODEL_IP}:9100"],
        "prometheus": ["127.0.0.1:9090"],
    }
    assert config["rule_files"] == ["/etc/prometheus/radio-alerts.yml"]


def test_promtool_accepts_the_rendered_configuration(rendered: Path, tmp_path: Path) -> None:
    """What the task's `validate: promtool check config %s` runs, on the role's defaults."""
    promtool = require("promtool")
    rules = tmp_path / "radio-alerts.yml"
    shutil.copy(ROLE / "files" / "radio-alerts.yml", rules)
    text = (rendered / "prometheus.yml").read_text()
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace("/etc/prometheus/radio-alerts.yml", str(rules)))
    result = run([promtool, "check", "config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"SUCCESS: (\d+) rules found", result.stdout)
    assert found and int(found[1]) >= 8, result.stdout  # the role's rules were read
    # Guard: the same check refuses a configuration whose rule file is missing.
    config.write_text(text.replace("/etc/prometheus/radio-alerts.yml", str(tmp_path / "none")))
    assert run([promtool, "check", "config", str(config)]).returncode != 0


def test_prometheus_and_the_frontends_node_exporter_listen_on_loopback(
    rendered: Path,
) -> None:
    prom = read_env_file(rendered / "prometheus.default")["ARGS"].strip('"').split()
    assert "--web.listen-address=127.0.0.1:9090" in prom
    assert "--storage.tsdb.retention.time=15d" in prom
    node = read_env_file(rendered / "node-exporter.default")["ARGS"].strip('"')
    assert node == "--web.listen-address=127.0.0.1:9100"
    # A model host's exporter answers the frontend over the private network (the security
    # group admits the frontend only: main.tf).
    model = read_env_file(rendered / "node-exporter-model.default")["ARGS"].strip('"')
    assert model == "--web.listen-address=:9100"


def test_model_host_serves_its_metrics_to_the_network(rendered: Path) -> None:
    env = read_env_file(rendered / "model.env")
    assert (env["MODEL_SERVER_METRICS_HOST"], env["MODEL_SERVER_METRICS_PORT"]) == (
        "0.0.0.0", "9102")


SCALE_OUT_PLAY = """\
- name: What the frontend's Prometheus scrapes with several model servers
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - {defaults}
  tasks:
    - name: Write the targets
      ansible.builtin.copy:
        content: "{{{{ {{'model': radio_monitoring_model_targets,
                       'node': radio_monitoring_node_targets}} | to_json }}}}"
        dest: {out}
        mode: "0644"
"""


def test_an_auto_scaling_group_is_scraped_at_each_servers_private_address(
    tmp_path: Path,
) -> None:
    """Without radio_mlflow_private_ip, the [mlflow] group's facts (app.playbook.yml's first
    play gathers them) name the servers."""
    playbook = require("ansible-playbook")
    out = tmp_path / "targets.json"
    play = tmp_path / "play.yml"
    play.write_text(SCALE_OUT_PLAY.format(defaults=ROLE / "defaults" / "main.yml", out=out))
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"mlflow": {"hosts": {
        "radio-mlflow": {"ansible_default_ipv4": {"address": "10.0.1.31"}},
        "radio-mlflow-2": {"ansible_default_ipv4": {"address": "10.0.2.32"}},
    }}}, "hosts": {"localhost": {"ansible_python_interpreter": sys.executable}}}}))
    result = run([playbook, "-i", str(inventory), str(play)], env=ansible_env(tmp_path / "a"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(out.read_text()) == {
        "model": ["10.0.1.31:9102", "10.0.2.32:9102"],
        "node": ["127.0.0.1:9100", "10.0.1.31:9100", "10.0.2.32:9100"],
    }


def test_grafana_is_on_loopback_under_grafana_with_its_own_login(rendered: Path) -> None:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(rendered / "grafana.ini")
    server = ini["server"]
    assert (server["http_addr"], server["http_port"]) == ("127.0.0.1", "3000")
    assert server["root_url"].endswith("/grafana/") and server["serve_from_sub_path"] == "true"
    security = ini["security"]
    # Never a default password: the file the role generates, read when Grafana first starts.
    assert security["admin_password"] == "$__file{/etc/grafana/radio-admin-password}"
    assert security["cookie_secure"] == "true"
    assert ini["users"]["allow_sign_up"] == "false"
    assert ini["auth.anonymous"]["enabled"] == "false"
    # A patient-data product sends nothing out.
    assert ini["analytics"]["reporting_enabled"] == "false"
    assert ini["analytics"]["check_for_updates"] == "false"
    assert ini["snapshots"]["external_enabled"] == "false"
    source = yaml.safe_load((rendered / "grafana-datasource.yml").read_text())["datasources"][0]
    assert source["url"] == "http://127.0.0.1:9090"


def test_grafana_password_is_generated_once_and_kept_private() -> None:
    generate = task("grafana.yml", "Generate Grafana's first admin password")
    copy = generate["ansible.builtin.copy"]
    assert "lookup('ansible.builtin.password', '/dev/null'" in copy["content"]  # not stored
    assert copy["force"] is False  # a re-run keeps the first one
    assert copy["mode"] == "0600" and copy["owner"] == "grafana"
    assert copy["dest"] == "{{ radio_monitoring_grafana_password_file }}"
    assert generate["no_log"] is True
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["radio_monitoring_grafana_password_file"].startswith("/etc/grafana/")


def test_grafana_comes_from_its_signed_repository() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    key = task("grafana.yml", "Fetch Grafana's package signing key")["ansible.builtin.get_url"]
    assert key["url"] == "{{ radio_monitoring_grafana_key_url }}"
    assert defaults["radio_monitoring_grafana_key_url"] == "https://apt.grafana.com/gpg.key"
    repo = task("grafana.yml", "Add Grafana's apt repository")["ansible.builtin.apt_repository"]
    assert repo["repo"] == "{{ radio_monitoring_grafana_repo }}"
    assert defaults["radio_monitoring_grafana_repo"].startswith(
        "deb [signed-by={{ radio_monitoring_grafana_keyring }}] https://apt.grafana.com ")


@pytest.mark.parametrize(
    ("title", "command", "handler"),
    [
        ("Install the alert rules", "promtool check rules %s", "Reload prometheus"),
        ("Install the Prometheus configuration", "promtool check config %s",
         "Reload prometheus"),
        ("Install the Alertmanager configuration", "amtool check-config %s",
         "Reload alertmanager"),
    ],
)
def test_prometheus_files_are_checked_before_they_are_installed(
        title: str, command: str, handler: str) -> None:
    body = task("server.yml", title)
    module = next(v for k, v in body.items() if k.startswith("ansible.builtin."))
    assert module["validate"] == command
    assert body["notify"] == handler
    order = [t["name"] for t in tasks("server.yml")]
    # check config reads the rule files the configuration names: they go first.
    assert order.index("Install the alert rules") < order.index(
        "Install the Prometheus configuration")


def test_both_playbooks_use_the_role() -> None:
    def monitoring(playbook: str) -> dict[str, Any]:
        plays = yaml.safe_load((ROOT / playbook).read_text())
        roles = [r for p in plays for r in p.get("roles", [])]
        return next(r for r in roles if r["role"] == "radio_monitoring")

    assert monitoring("app.playbook.yml")["vars"]["radio_monitoring_mode"] == "server"
    assert monitoring("mlflow.playbook.yml")["vars"]["radio_monitoring_mode"] == "node"
    learn = yaml.safe_load((ROOT / "app.playbook.yml").read_text())[0]
    assert learn["hosts"] == "mlflow"
    assert learn["tasks"][0]["when"] == "radio_mlflow_private_ip is not defined"


def test_one_knob_turns_grafana_off_in_both_roles(tmp_path: Path) -> None:
    """radio_grafana=false (the converge test's setting): no /grafana/ in nginx either."""
    from deploy_helpers import render_templates

    out = render_templates(tmp_path / "out", radio_grafana=False)
    assert "location /grafana/" not in (out / "radio.conf").read_text()
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["radio_monitoring_grafana"] == "{{ radio_grafana | default(true) }}"


def test_prometheus_hands_alerts_to_alertmanager_on_loopback(rendered: Path) -> None:
    config = yaml.safe_load((rendered / "prometheus.yml").read_text())
    assert config["alerting"] == {
        "alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:9093"]}]}]}
    args = read_env_file(rendered / "alertmanager.default")["ARGS"].strip('"').split()
    assert "--web.listen-address=127.0.0.1:9093" in args
    # Its gossip port (0.0.0.0:9094 by default) is off: one frontend, no peers.
    assert "--cluster.listen-address=" in args
    assert "--config.file=/etc/prometheus/alertmanager.yml" in args
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert "prometheus-alertmanager" in defaults["radio_monitoring_packages_server"]
    assert "prometheus-alertmanager" not in defaults["radio_monitoring_packages_node"]


def test_alertmanager_config_keeps_its_password_from_other_users() -> None:
    module = task("server.yml", "Install the Alertmanager configuration")[
        "ansible.builtin.template"]
    assert (module["owner"], module["group"], module["mode"]) == ("root", "prometheus", "0640")
    started = task("main.yml", "Start Alertmanager at boot and now")
    assert started["ansible.builtin.systemd_service"] == {
        "name": "prometheus-alertmanager", "enabled": True, "state": "started"}


def test_alertmanager_mails_with_the_jobs_smtp_settings(tmp_path: Path) -> None:
    """One set of radio_smtp_* variables: the jobs' environment and Alertmanager's
    configuration name the same server, login, sender and recipients; amtool accepts it."""
    amtool = require("amtool")
    from deploy_helpers import render_templates

    out = render_templates(
        tmp_path / "out", radio_smtp_host="smtp.hospital.test", radio_smtp_port=2587,
        radio_smtp_user="radio-mailer", radio_smtp_password="pa ss:{w}'ord",
        radio_smtp_from="radio@hospital.test", radio_alert_to="ops@hospital.test")
    jobs = read_env_file(out / "jobs.env")
    config = yaml.safe_load((out / "alertmanager.yml").read_text())
    glob = config["global"]
    assert glob["smtp_smarthost"] == f"{jobs['RADIO_SMTP_HOST']}:{jobs['RADIO_SMTP_PORT']}"
    assert glob["smtp_smarthost"] == "smtp.hospital.test:2587"
    assert (glob["smtp_auth_username"], glob["smtp_auth_password"]) == (
        "radio-mailer", "pa ss:{w}'ord")
    assert jobs["RADIO_SMTP_PASSWORD"] == "pa ss:{w}'ord"
    assert glob["smtp_from"] == jobs["RADIO_SMTP_FROM"] == "radio@hospital.test"
    assert glob["smtp_require_tls"] is True
    (receiver,) = config["receivers"]
    assert receiver["email_configs"][0]["to"] == jobs["RADIO_ALERT_TO"] == "ops@hospital.test"
    result = run([amtool, "check-config", str(out / "alertmanager.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_without_smtp_settings_emails_nobody(rendered: Path) -> None:
    amtool = require("amtool")
    config = yaml.safe_load((rendered / "alertmanager.yml").read_text())
    assert config["receivers"] == [{"name": "radio-ops"}]
    assert "smtp_smarthost" not in config["global"]
    result = run([amtool, "check-config", str(rendered / "alertmanager.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
