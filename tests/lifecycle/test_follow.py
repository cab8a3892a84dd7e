"""lifecycle/follow.py: the zero-downtime switch, under load, through the whole stack; a
failing version retried with backoff and e-mailed once; the old server kept until the proxy
answers with the new version.

The real nginx (the role's proxy site), two real scoring servers (mlflow/serve.sh) taking
turns under the follower, and the app under gunicorn; 4 clients upload real X-rays while
production moves to another version and back (a promotion and a rollback). Every request
must succeed, and the answers must name the new version after each switch.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import accounts
import helpers
import jinja2
import pytest
import requests
from helpers import ROOT
from lifecycle_helpers import settings_for
from load_helpers import Load, Send, runs, wait_for
from proxy_helpers import private_nginx

from lifecycle import events, operations
from lifecycle import model_versions as reg
from lifecycle.follow import Follower, FollowSettings, answering_version, follow_settings

CLIENTS = 4
LOGS = ROOT / "test-output" / "logs" / "follow"

def nginx_proxy(prefix: Path, port: int, first_port: int) -> tuple[Path, list[str]]:
    """The role's proxy site in a private nginx; (conf, reload command)."""
    prefix.mkdir(parents=True)
    upstream = prefix / "upstream.conf"
    upstream.write_text(f"server 127.0.0.1:{first_port};\n")
    template = (ROOT / "roles/radio_model/templates/model-proxy.conf.j2").read_text()
    site = prefix / "site.conf"
    site.write_text(jinja2.Template(template).render(
        radio_model_upstream_file=upstream, radio_model_host="127.0.0.1", radio_model_port=port,
        radio_model_timeout_s=60))
    base = private_nginx(prefix, site)
    subprocess.run(base, check=True, capture_output=True)  # daemonises
    return prefix / "nginx.conf", [*base, "-s", "reload"]


def test_follow_settings_from_the_environment():
    f = follow_settings({"RADIO_FOLLOW_PORTS": "9001,9002", "RADIO_FOLLOW_RELOAD": "a -b 'c d'",
                         "RADIO_FOLLOW_DRAIN_S": "3", "RADIO_FOLLOW_RETRY_S": "7",
                         "RADIO_FOLLOW_RETRY_MAX_S": "70", "RADIO_FOLLOW_CONFIRM_S": "9"})
    assert f.ports == (9001, 9002) and f.reload_cmd == ("a", "-b", "c d") and f.drain_s == 3
    assert (f.retry_s, f.retry_max_s, f.confirm_s) == (7, 70, 9)
    assert follow_settings({}) == FollowSettings()
    assert follow_settings({"RADIO_FOLLOW_RELOAD": "none"}).reload_cmd == ()
    with pytest.raises(ValueError, match="two different ports"):
        follow_settings({"RADIO_FOLLOW_PORTS": "9001,9001"})


def test_a_failing_version_is_retried_with_backoff_and_emailed_once(
        bare_registry, smtp, tmp_path):
    """A version whose server will not start: tried at 0, 30, 90, 210 and 410 s of looks
    every 5 s (30 s doubling, at most 200 s), one e-mail; a second failing version gets its
    own e-mail, the first one coming back gets none."""
    s = bare_registry
    f = FollowSettings(ports=(helpers.free_port(), helpers.free_port()),
                       upstream=tmp_path / "upstream.conf", reload_cmd=(),
                       proxy_url="http://127.0.0.1:9", serve_cmd=("bash", "-c", "exit 3"),
                       retry_s=30, retry_max_s=200, log_dir=tmp_path / "servers")
    now = [0.0]
    follower = Follower(s, f, clock=lambda: now[0])

    def failures() -> list[dict]:
        return [e for e in events.read(s.events_log) if e["action"] == "switch_failed"]

    tried = []
    for t in range(0, 600, 5):  # ten minutes of looks at the registry
        now[0] = t
        before = len(failures())
        follower.step()
        tried += [t] * (len(failures()) - before)
    assert tried == [0, 30, 90, 210, 410]
    assert [(e["version"], e["attempt"], e["retry_in_s"]) for e in failures()] == [
        ("2", 1, 30), ("2", 2, 60), ("2", 3, 120), ("2", 4, 200), ("2", 5, 200)]
    assert failures()[0]["reason"] == "the scoring server exited with 3"
    assert follower.active is None
    assert smtp.subjects() == ["[Radio] model server could not switch to version 2"]

    cl = reg.client(s.tracking_uri)
    cl.set_registered_model_alias(s.model_name, "production", "3")
    now[0] = 600
    follower.step()  # a new version is tried at once, and e-mailed on its first failure
    cl.set_registered_model_alias(s.model_name, "production", "2")
    now[0] = 700
    follower.step()  # version 2 again, its backoff over (410 + 200 s): tried, not e-mailed
    assert [(e["version"], e["attempt"]) for e in failures()[5:]] == [("3", 1), ("2", 6)]
    assert smtp.subjects() == ["[Radio] model server could not switch to version 2",
                               "[Radio] model server could not switch to version 3"]


@pytest.mark.slow
def test_the_old_server_stops_only_after_the_proxy_answers_with_the_new_version(
        shipped_copy, smtp, tmp_path, monkeypatch):
    """A proxy whose reload does not take keeps answering with the old version: the new
    server is stopped, the old one serves on (one e-mail); once the proxy reloads, the retry
    switches and only then is the old server stopped."""
    s = shipped_copy
    # The scoring servers this in-process follower starts inherit the tests' interpreter.
    monkeypatch.setenv("PATH", helpers.server_env()["PATH"])
    proxy_port, blue, green = helpers.free_port(), helpers.free_port(), helpers.free_port()
    conf, reload_cmd = nginx_proxy(tmp_path / "nginx", proxy_port, blue)
    proxy = f"http://127.0.0.1:{proxy_port}"
    upstream = tmp_path / "nginx" / "upstream.conf"
    f = FollowSettings(ports=(blue, green), upstream=upstream, reload_cmd=tuple(reload_cmd),
                       proxy_url=proxy, drain_s=1, confirm_s=10, retry_s=30,
                       log_dir=LOGS / "confirm")
    now = [0.0]
    follower = Follower(s, f, clock=lambda: now[0])
    try:
        follower.step()
        assert follower.active is not None
        first, old = follower.active.version, follower.active.proc
        assert answering_version(proxy) == first
        other = helpers.register_again(tmp_path / "mlflow", first)
        operations.force(s, other, by="test", reason="a proxy that does not reload")

        follower.f = replace(f, reload_cmd=("true",))  # the reload "succeeds", changes nothing
        follower.step()
        assert follower.active.version == first and old.poll() is None  # still serving
        assert answering_version(proxy) == first
        assert upstream.read_text().endswith(f"server 127.0.0.1:{blue};\n")  # put back
        (failed,) = [e for e in events.read(s.events_log) if e["action"] == "switch_failed"]
        assert failed["reason"] == (f"the proxy did not answer with version {other} "
                                    "within 10 s")
        switch_mail = [f"[Radio] model server could not switch to version {other}"]
        assert [m for m in smtp.subjects() if "could not switch" in m] == switch_mail

        follower.f = f  # the proxy reloads again
        now[0] = 29
        follower.step()  # backoff: not yet
        assert follower.active.version == first
        now[0] = 30
        follower.step()
        assert follower.active.version == other and answering_version(proxy) == other
        assert old.poll() is not None  # stopped once the proxy answered with the new one
        switched = [e["version"] for e in events.read(s.events_log) if e["action"] == "switched"]
        assert switched == [first, other]
        assert [m for m in smtp.subjects() if "could not switch" in m] == switch_mail
    finally:
        follower.close()
        subprocess.run([*reload_cmd[:-2], "-s", "quit"], capture_output=True)


@pytest.mark.slow
def test_promotion_and_rollback_under_load_lose_no_request(tmp_path, real_sources):
    shutil.copytree(ROOT / "mlflow", tmp_path / "mlflow", ignore=shutil.ignore_patterns("*.sh"))
    s = settings_for(tmp_path / "mlflow", tmp_path)
    proxy_port, blue, green = helpers.free_port(), helpers.free_port(), helpers.free_port()
    conf, reload_cmd = nginx_proxy(tmp_path / "nginx", proxy_port, blue)
    proxy = f"http://127.0.0.1:{proxy_port}"
    env = helpers.server_env(
        PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=s.tracking_uri,
        RADIO_REGISTRY_ROOT=str(s.registry_root), RADIO_LIFECYCLE_LOG=str(s.events_log),
        RADIO_FOLLOW_PORTS=f"{blue},{green}", RADIO_FOLLOW_UPSTREAM=str(tmp_path / "nginx" /
                                                                        "upstream.conf"),
        RADIO_FOLLOW_RELOAD=" ".join(reload_cmd), MODEL_SERVER_URL=proxy,
        RADIO_FOLLOW_INTERVAL_S="1", RADIO_FOLLOW_DRAIN_S="5",
        RADIO_FOLLOW_LOGS=str(LOGS))
    follower = helpers.start([sys.executable, "-m", "lifecycle.follow"], env,
                             LOGS / "follower.log")
    app = None
    try:
        first = next(r["version"] for r in operations.list_versions(s)
                     if "production" in r["aliases"])  # production of the shipped copy
        _wait_for(lambda: answering_version(proxy) == first, follower, 300, "first server")
        port = helpers.free_port()
        app_env = helpers.server_env(PYTHONPATH=str(ROOT), PORT=str(port), HOST="127.0.0.1",
                                     MLFLOW_URL=proxy, RADIO_DATA_DIR=str(tmp_path / "data"),
                                     RADIO_WORKERS="2")
        app = helpers.start(helpers.gunicorn_cmd(), app_env, LOGS / "gunicorn.log")
        helpers.wait_until(f"http://127.0.0.1:{port}/health", app, 60, lambda r: r.ok)
        token = accounts.cli_token(app_env, "load-clinician", "clinician")
        images = [p.read_bytes() for p in sorted((real_sources[0] / "val").rglob("*.*"))[:8]]
        load = Load(predict_sender(f"http://127.0.0.1:{port}", token, images), CLIENTS)
        load.start()
        _wait_for(lambda: load.count() >= 8, follower, 120, "first answers")
        other = helpers.register_again(tmp_path / "mlflow", first)
        t0 = time.monotonic()
        operations.force(s, other, by="test", reason="switch under load")
        _wait_for(lambda: load.latest() == other, follower, 300, "answers from the new version")
        t1 = time.monotonic()
        operations.rollback(s, by="test", reason="and back")
        _wait_for(lambda: load.latest() == first, follower, 300, "answers after the rollback")
        print(f"alias moved -> answers from the new version: promotion {t1 - t0:.1f} s, "
              f"rollback {time.monotonic() - t1:.1f} s")
        n_before = load.count()
        _wait_for(lambda: load.count() >= n_before + 8, follower, 120, "answers after")
        load.stop()
    finally:
        if app is not None:
            helpers.stop(app)
        helpers.stop(follower)
        subprocess.run([*reload_cmd[:-2], "-s", "quit"], capture_output=True)
    failures = [r for r in load.results if r[1] != 200]
    versions = [r[2] for r in load.results]
    print(f"{len(load.results)} requests, {len(failures)} failed; versions in order: "
          f"{runs(versions)}")
    assert not failures, failures[:5]
    # the answers name the old version, then the new one, then the old one again
    assert [v for v, _ in runs(versions)][:1] == [first] and runs(versions)[-1][0] == first
    assert other in versions
    switched = [e for e in events.read(s.events_log) if e["action"] == "switched"]
    assert [e["version"] for e in switched] == [first, other, first]


def _wait_for(cond, proc, deadline_s: float, what: str) -> None:
    wait_for(cond, [proc], deadline_s, what, helpers.log_tail)


def predict_sender(url: str, token: str, images: list[bytes]) -> Send:
    """An X-ray upload to the app's /predict; (status, version of the answer)."""
    auth = {"Authorization": f"Bearer {token}"}

    def send(session: requests.Session, n: int) -> tuple[object, str]:
        r = session.post(f"{url}/predict", files={"file": ("x.png", images[n % len(images)])},
                         headers=auth, timeout=120)
        return r.status_code, str(r.json()["model"]["version"]) if r.status_code == 200 else ""

    return send


def test_a_scoring_server_reads_the_registry_it_is_given(tmp_path, monkeypatch):
    """A registry URI left in the environment (training does set one) must not reach the
    child: it would look the version up in another registry and exit 1 (a CI failure)."""
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////elsewhere/mlflow.db")
    s = settings_for(tmp_path / "mlflow", tmp_path)
    dump = tmp_path / "env.txt"
    f = FollowSettings(serve_cmd=("sh", "-c", f"env > {dump}"), log_dir=tmp_path / "logs")
    server = Follower(s, f)._start("7", 9999)
    assert server.proc.wait(timeout=30) == 0
    env = dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)
    want = f"sqlite:///{(tmp_path / 'mlflow' / 'mlflow.db').resolve()}"
    assert (env["MLFLOW_TRACKING_URI"], env["MLFLOW_REGISTRY_URI"]) == (want, want)
    assert (env["RADIO_SERVE_VERSION"], env["MODEL_SERVER_PORT"]) == ("7", "9999")
