"""Prometheus and Grafana, for real: promtool checks the rendered configuration and the
alert rules (and their unit tests); a real Prometheus scrapes the real app (gunicorn, two
workers), the real model server and a node exporter, and every query of every Grafana
panel, run against it, returns series."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import helpers
import jinja2
import numpy as np
import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "radio_monitoring"
DASHBOARD = ROLE / "files" / "grafana" / "radio-dashboard.json"


def _tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists()
                                  else None)
    if not path:
        pytest.skip(f"{name} is not installed (Debian package prometheus; .ci/run installs it)")
    return path


def render_prometheus(out: Path, **overrides) -> Path:
    """The role's prometheus.yml.j2 with its defaults (and test ports)."""
    values = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    # Defaults that are Ansible expressions (host lists) come from the test instead.
    values = {k: v for k, v in values.items() if not isinstance(v, str) or "{{" not in v}
    values.update(overrides)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = json.dumps
    text = env.from_string((ROLE / "templates" / "prometheus.yml.j2").read_text()).render(
        **values)
    out.write_text(text)
    return out


def test_promtool_checks_config_and_rules(tmp_path):
    promtool = _tool("promtool")
    rules = tmp_path / "radio-alerts.yml"
    shutil.copy(ROLE / "files" / "radio-alerts.yml", rules)
    cfg = render_prometheus(tmp_path / "prometheus.yml", radio_monitoring_rules_file=str(rules),
                            radio_monitoring_app_target="127.0.0.1:9101",
                            radio_monitoring_model_targets=["10.0.2.10:9102"],
                            radio_monitoring_node_targets=["127.0.0.1:9100"])
    for args in (["check", "config", str(cfg)], ["check", "rules", str(rules)],
                 ["test", "rules", str(ROOT / "tests" / "monitoring" / "alerts_test.yml")]):
        out = subprocess.run([promtool, *args], capture_output=True, text=True,
                             cwd=ROOT / "tests" / "monitoring")
        assert out.returncode == 0, out.stdout + out.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(rules.read_text().replace("expr: up{", "expr: up{{"))
    assert subprocess.run([promtool, "check", "rules", str(broken)],
                          capture_output=True).returncode != 0


def test_grafana_provisioning_is_valid():
    ds = yaml.safe_load(jinja2.Template((ROLE / "templates" / "grafana-datasource.yml.j2")
                        .read_text()).render(radio_monitoring_prometheus_port=9090))
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://127.0.0.1:9090"
    provider = yaml.safe_load((ROLE / "files" / "grafana" / "dashboards.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and dash["uid"]
    for panel in dash["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"], panel["title"]


class SwitchProxy:
    """TCP proxy to the model server that can be switched off (connections then close)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.up = True
        self.open: list[socket.socket] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if not self.up:
                conn.close()
                continue
            up = socket.create_connection(self.upstream)
            self.open += [conn, up]
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=helpers.DroppingProxy._pipe, args=(a, b),
                                 daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones (pooled keep-alives included)."""
        self.up = False
        for sock in self.open:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.open.clear()


def _write_reports(data_dir: Path) -> None:
    """Real reports from the drift and model-drift code, where the app's collector reads."""
    from monitoring import drift, model_drift, reports

    rng = np.random.default_rng(0)
    ref = drift.Window(rng.normal(size=(80, 3)), np.array(["ref"] * 80))
    cur = drift.Window(np.concatenate([rng.normal(size=(20, 3)), rng.normal(2, 1, (20, 3))]),
                       np.array(["site-a"] * 20 + ["site-b"] * 20))
    res = drift.compare(ref, cur, ["a", "b", "c"], permutations=100)
    folder = data_dir / "monitoring"
    reports.write(folder, reports.new_report(
        "data", drift=True, summary=drift.summary(res), model_version="3", window="test",
        method="MMD", groups=drift.as_dicts(res)), "<svg/>")
    cases = [model_drift.Case("site-a", "COVID", "Normal")] * 12
    mres = model_drift.evaluate(cases, {"accuracy": 0.8, "normals_called_covid": 0.05})
    reports.write(folder, reports.new_report(
        "model", drift=True, summary=model_drift.summary(mres), model_version="3",
        window="test", method="Wilson", groups=model_drift.as_dicts(mres)), "<svg/>")


def _query(prom: str, expr: str) -> list:
    r = requests.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10)
    assert r.status_code == 200, (expr, r.text)
    return r.json()["data"]["result"]


@pytest.mark.slow
def test_real_prometheus_scrapes_app_and_model_and_every_panel_has_series(
        tmp_path, model_server, model_metrics_port, xray_path):
    prometheus = _tool("prometheus")
    node_exporter = _tool("prometheus-node-exporter")
    procs = []
    proxy = SwitchProxy(model_server)
    data = tmp_path / "data"
    _write_reports(data)
    try:
        node_port, app_port, app_metrics, prom_port = (helpers.free_port() for _ in range(4))
        procs.append(helpers.start([node_exporter, f"--web.listen-address=127.0.0.1:{node_port}",
                                    "--collector.disable-defaults", "--collector.cpu",
                                    "--collector.meminfo", "--collector.filesystem"],
                                   helpers.server_env(), tmp_path / "node.log"))
        env = helpers.server_env(
            PYTHONPATH=str(ROOT), PORT=str(app_port), MLFLOW_URL=proxy.url,
            RADIO_DATA_DIR=str(data), RADIO_WORKERS="2", RADIO_METRICS_PORT=str(app_metrics),
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom-multiproc"), RADIO_SITE="Test",
            RADIO_BREAKER_FAILURES="100")
        app = helpers.start(helpers.gunicorn_cmd(), env, tmp_path / "gunicorn.log")
        procs.append(app)
        url = f"http://127.0.0.1:{app_port}"
        helpers.wait_until(f"{url}/health", app, 60, lambda r: r.ok)
        import accounts

        clin = {"Authorization": f"Bearer {accounts.cli_token(env, 'prom-c', 'clinician')}"}
        rad = {"Authorization": f"Bearer {accounts.cli_token(env, 'prom-r', 'radiologist')}"}
        rules = tmp_path / "radio-alerts.yml"
        shutil.copy(ROLE / "files" / "radio-alerts.yml", rules)
        cfg = render_prometheus(
            tmp_path / "prometheus.yml", radio_monitoring_scrape_interval="1s",
            radio_monitoring_rules_file=str(rules),
            radio_monitoring_app_target=f"127.0.0.1:{app_metrics}",
            radio_monitoring_model_targets=[f"127.0.0.1:{model_metrics_port}"],
            radio_monitoring_node_targets=[f"127.0.0.1:{node_port}"],
            radio_monitoring_prometheus_port=prom_port)
        prom = f"http://127.0.0.1:{prom_port}"
        procs.append(helpers.start(
            [prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"], helpers.server_env(),
            tmp_path / "prometheus.log"))
        helpers.wait_until(f"{prom}/-/ready", procs[-1], 60)

        image = xray_path.read_bytes()
        ids = []
        deadline = time.monotonic() + 12  # traffic across several 1 s scrapes
        while time.monotonic() < deadline:
            r = requests.post(f"{url}/predict", headers=clin, timeout=60,
                              files={"file": ("x.png", image, "image/png")})
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])
            requests.get(f"{url}/nothing-here", headers=clin, timeout=10)
            proxy.down()  # the model server "goes away": a 503 on /predict
            r = requests.post(f"{url}/predict", headers=clin, timeout=60,
                              files={"file": ("x.png", image, "image/png")})
            assert r.status_code == 503
            proxy.up = True
            for verdict, label in (("validated", ""), ("corrected", "Normal")):
                r = requests.post(f"{url}/predictions/{ids[-1]}/review", headers=rad,
                                  data={"verdict": verdict, "label": label},
                                  allow_redirects=False, timeout=10)
                assert r.status_code in (302, 303), r.text
            time.sleep(0.5)
        time.sleep(3)
        ups = {t["labels"]["job"]: t["health"] for t in
               requests.get(f"{prom}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]}
        assert ups == {"radio-app": "up", "radio-model": "up", "node": "up",
                       "prometheus": "up"}, ups
        # Both workers' predictions are summed (multiprocess mode).
        total = _query(prom, 'sum(radio_predictions_total{status="ok"})')
        assert float(total[0]["value"][1]) == len(ids)
        empty = []
        dash = json.loads(DASHBOARD.read_text())
        for panel in dash["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$__rate_interval", "1m")
                if not _query(prom, expr):
                    empty.append(f"{panel['title']}: {expr}")
        assert not empty, "panels without series:\n" + "\n".join(empty)
    finally:
        for p in reversed(procs):
            helpers.stop(p)
        proxy.sock.close()
