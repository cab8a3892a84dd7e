"""Alerts reach someone, for real: the role's Alertmanager configuration passes amtool, and a
real Prometheus evaluating Radio's own alert rules hands a firing alert to a real
Alertmanager (configured by the role's template), which e-mails it over STARTTLS with a
login to a real SMTP server (aiosmtpd, tests/smtp_helpers.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import helpers
import jinja2
import pytest
import smtp_helpers
import yaml
from test_prometheus import ROLE, _tool, _write_reports, render_prometheus

# The jobs' SMTP settings (radio_common) with the test server's values.
NO_MAIL = {
    "radio_monitoring_alert_smtp_host": "", "radio_monitoring_alert_smtp_port": 587,
    "radio_monitoring_alert_smtp_user": "", "radio_monitoring_alert_smtp_password": "",
    "radio_monitoring_alert_smtp_from": "radio@localhost", "radio_monitoring_alert_to": "",
    "radio_monitoring_alert_smtp_cafile": "",
}


def render_alertmanager(out: Path, **overrides: object) -> Path:
    """The role's alertmanager.yml.j2 with its defaults, as Ansible's template module renders
    it (trim_blocks), the SMTP settings from ``overrides``."""
    values = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    values = {k: v for k, v in values.items() if not isinstance(v, str) or "{{" not in v}
    values.update(NO_MAIL)
    values.update(overrides)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True)
    env.filters["to_json"] = json.dumps
    out.write_text(env.from_string((ROLE / "templates" / "alertmanager.yml.j2").read_text())
                   .render(**values))
    return out


def _amtool_check(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_tool("amtool"), "check-config", str(config)], capture_output=True,
                          text=True)


def test_amtool_accepts_the_configuration_with_and_without_mail(tmp_path):
    quiet = render_alertmanager(tmp_path / "quiet.yml")
    assert _amtool_check(quiet).returncode == 0
    # Without SMTP settings nobody is e-mailed (the receiver has no e-mail configuration).
    assert yaml.safe_load(quiet.read_text())["receivers"] == [{"name": "radio-ops"}]

    mail = render_alertmanager(
        tmp_path / "mail.yml", radio_monitoring_alert_smtp_host="smtp.hospital.test",
        radio_monitoring_alert_smtp_user="radio-mailer",
        radio_monitoring_alert_smtp_password='se"cret: {x}',
        radio_monitoring_alert_smtp_from="radio@hospital.test",
        radio_monitoring_alert_to="ops@hospital.test, oncall@hospital.test")
    checked = _amtool_check(mail)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load(mail.read_text())
    assert config["global"]["smtp_smarthost"] == "smtp.hospital.test:587"
    assert config["global"]["smtp_require_tls"] is True  # never in clear
    assert config["global"]["smtp_auth_password"] == 'se"cret: {x}'  # quoted, not broken
    (receiver,) = config["receivers"]
    assert receiver["email_configs"][0]["to"] == "ops@hospital.test, oncall@hospital.test"
    # Guard: amtool refuses what it should (an unknown key).
    broken = tmp_path / "broken.yml"
    broken.write_text(mail.read_text().replace("send_resolved:", "sent_resolved:"))
    assert _amtool_check(broken).returncode != 0


@pytest.mark.slow
def test_a_firing_radio_alert_is_emailed_through_alertmanager(tmp_path):
    """RadioDataDrift and RadioModelDrift (radio-alerts.yml) fire on the app's real report
    gauges: Prometheus -> Alertmanager -> STARTTLS + login -> the SMTP server's mailbox."""
    from prometheus_client import CollectorRegistry, start_http_server

    from app.platform.metrics import ReportCollector

    prometheus, alertmanager = _tool("prometheus"), _tool("prometheus-alertmanager")
    data = tmp_path / "data"
    _write_reports(data)  # a data-drift report that found drift in site-b
    registry = CollectorRegistry()
    registry.register(ReportCollector(data))
    metrics_port, smtp_port, am_port, prom_port = (helpers.free_port() for _ in range(4))
    metrics_server, _ = start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    # PLAIN only: Alertmanager's LOGIN expects the "Username:" prompt of Postfix and most
    # servers, aiosmtpd prompts "User Name".
    controller, box, smtp_env = smtp_helpers.start(tmp_path, smtp_port, exclude_auth=("LOGIN",))
    procs = []
    try:
        am_cfg = render_alertmanager(
            tmp_path / "alertmanager.yml", radio_monitoring_alert_group_wait="1s",
            radio_monitoring_alert_smtp_host=smtp_env["RADIO_SMTP_HOST"],
            radio_monitoring_alert_smtp_port=smtp_port,
            radio_monitoring_alert_smtp_user=smtp_env["RADIO_SMTP_USER"],
            radio_monitoring_alert_smtp_password=smtp_env["RADIO_SMTP_PASSWORD"],
            radio_monitoring_alert_smtp_from=smtp_env["RADIO_SMTP_FROM"],
            radio_monitoring_alert_to=smtp_env["RADIO_ALERT_TO"],
            radio_monitoring_alert_smtp_cafile=smtp_env["RADIO_SMTP_CAFILE"])
        assert _amtool_check(am_cfg).returncode == 0
        procs.append(helpers.start(
            [alertmanager, f"--config.file={am_cfg}", f"--storage.path={tmp_path / 'am'}",
             f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
            helpers.server_env(), tmp_path / "alertmanager.log"))
        helpers.wait_until(f"http://127.0.0.1:{am_port}/-/ready", procs[-1], 60)

        rules = tmp_path / "radio-alerts.yml"
        shutil.copy(ROLE / "files" / "radio-alerts.yml", rules)
        cfg = render_prometheus(
            tmp_path / "prometheus.yml", radio_monitoring_scrape_interval="1s",
            radio_monitoring_rules_file=str(rules),
            radio_monitoring_app_target=f"127.0.0.1:{metrics_port}",
            radio_monitoring_model_targets=[], radio_monitoring_node_targets=[],
            radio_monitoring_prometheus_port=prom_port,
            radio_monitoring_alertmanager_port=am_port)
        procs.append(helpers.start(
            [prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"], helpers.server_env(),
            tmp_path / "prometheus.log"))
        helpers.wait_until(f"http://127.0.0.1:{prom_port}/-/ready", procs[-1], 60)

        # The reports found data drift and model drift: one e-mail per alert, in whichever
        # order Alertmanager flushes its two groups.
        expected = {"[Radio] FIRING: RadioDataDrift", "[Radio] FIRING: RadioModelDrift"}
        deadline = time.monotonic() + 90
        while (len({m["subject"] for m in box.messages} & expected) < 2
               and time.monotonic() < deadline):
            time.sleep(0.5)
        assert {m["subject"] for m in box.messages} == expected, (
            "not every alert was e-mailed\n" + helpers.log_tail(procs[0]) + "\n"
            + helpers.log_tail(procs[1]))
        (mail,) = [m for m in box.messages if m["subject"] == "[Radio] FIRING: RadioDataDrift"]
        assert mail["tls"] is True  # STARTTLS before the login and the message
        assert mail["from"] == "radio@hospital.test"
        assert mail["to"] == ["ops@hospital.test"]
        (part,) = mail["body"]  # one plain-text part, no HTML
        assert part.get_content_type() == "text/plain"
        lines = part.get_payload(decode=True).decode().splitlines()
        # One e-mail for the alert's two groups (report: drift overall and in site-b).
        assert [line for line in lines if line.startswith("FIRING")] == [
            "FIRING RadioDataDrift (warning): Data drift detected in overall "
            "(admin page: Monitoring)",
            "FIRING RadioDataDrift (warning): Data drift detected in site-b "
            "(admin page: Monitoring)"]
        assert lines[0].startswith("FIRING"), lines  # no blank first line
    finally:
        for p in reversed(procs):
            helpers.stop(p)
        metrics_server.shutdown()
        controller.stop()
