"""The rendered nginx site: valid for the real nginx, and behaving as a reverse proxy."""

from __future__ import annotations

import getpass
import gzip
import http.client
import json
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from deploy_helpers import RENDER_VARS, render_templates, require, run

# A stand-in for Ubuntu's /etc/nginx/nginx.conf: the site is included in the http
# block, where Ubuntu already turns gzip on. Workers run as the test's user so
# they can read pytest's private temp directories.
NGINX_CONF = """\
user {user};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    access_log off;
    gzip on;
    include {site};
}}
"""


def nginx_prefix(tmp: Path, site: Path) -> Path:
    """A prefix directory with nginx.conf including ``site``; returns the conf path."""
    tmp.mkdir(parents=True, exist_ok=True)
    (site.parent.parent / "logs").mkdir(exist_ok=True)
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=tmp, site=site, user=getpass.getuser()))
    return conf


def test_site_passes_nginx_t(rendered: Path, tmp_path: Path) -> None:
    nginx = require("nginx")
    conf = nginx_prefix(tmp_path / "nginx", rendered / "radio.conf")
    result = run([nginx, "-t", "-p", str(tmp_path / "nginx"), "-c", str(conf)])
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_t_rejects_a_broken_site(rendered: Path, tmp_path: Path) -> None:
    """Guards the check above: nginx -t must really read the included site."""
    nginx = require("nginx")
    broken = rendered.parent / "broken.conf"
    broken.write_text(
        (rendered / "radio.conf").read_text().replace("client_max_body_size", "client_max_bdy")
    )
    conf = nginx_prefix(tmp_path / "nginx", broken)
    result = run([nginx, "-t", "-p", str(tmp_path / "nginx"), "-c", str(conf)])
    assert result.returncode != 0
    assert "client_max_bdy" in result.stderr


def test_site_settings(rendered: Path, env_file) -> None:
    site = (rendered / "radio.conf").read_text()
    limit = RENDER_VARS["radio_max_upload_mb"]
    # One variable feeds nginx and the app.
    assert re.search(rf"^\s*client_max_body_size {limit}m;", site, re.M)
    assert env_file(rendered / "app.env")["RADIO_MAX_UPLOAD_MB"] == str(limit)
    # nginx outwaits gunicorn's timeout of 2 * MLFLOW_TIMEOUT_S + 30.
    gunicorn_timeout = 2 * RENDER_VARS["radio_web_mlflow_timeout_s"] + 30
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", site).group(1))
    assert read_timeout > gunicorn_timeout
    assert "server 127.0.0.1:8080;" in site
    assert "listen 80 default_server;" in site
    assert "listen 443 ssl default_server;" in site
    assert re.search(r"ssl_protocols TLSv1.2 TLSv1.3;", site)
    assert "listen [::]" not in site  # radio_web_listen_ipv6 is off for this render
    for header in (
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Referrer-Policy",
        "Content-Security-Policy",
    ):
        assert re.search(rf'add_header {header} "[^"]+" always;', site), header
    assert "server_tokens off;" in site


# --- nginx running the site against a stub app --------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


from app.platform.headers import HEADERS as APP_HEADERS  # noqa: E402 - beside the stub that uses it


class StubApp(BaseHTTPRequestHandler):
    """Answers like the Flask app: JSON, echoing the headers nginx forwarded."""

    server_name_ = "app"
    headers_ = APP_HEADERS

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.dumps(
            {
                "path": self.path,
                "forwarded_for": self.headers.get("X-Forwarded-For"),
                "host": self.headers.get("Host"),
                "proto": self.headers.get("X-Forwarded-Proto"),
                "server": self.server_name_,
                "padding": "x" * 4096,  # big enough for gzip_min_length
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in self.headers_.items():  # the app sets its own (app/platform/headers.py)
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.do_GET()

    def log_message(self, *args: object) -> None:
        pass


# Grafana sends its own policy (a nonce for its scripts): it must reach the browser as is.
GRAFANA_HEADERS = {"Content-Security-Policy": "script-src 'self' 'nonce-grafana'"}


@dataclass(frozen=True)
class LiveNginx:
    """Ports of a running nginx and the CA file that trusts its certificate."""

    http_port: int
    https_port: int
    cafile: Path
    grafana_port: int


@pytest.fixture(scope="module")
def live_nginx(
    tmp_path_factory: pytest.TempPathFactory, tls_pair: tuple[Path, Path]
) -> Iterator[LiveNginx]:
    """nginx serving the rendered site (HTTP and HTTPS) on loopback, proxying to StubApp."""
    nginx = require("nginx")
    app_port, http_port, https_port = free_port(), free_port(), free_port()
    grafana_port = free_port()
    base = tmp_path_factory.mktemp("live")
    static = base / "static"
    static.mkdir()
    (static / "app.css").write_text("body { color: black; }\n")
    acme = base / "acme"
    (acme / ".well-known/acme-challenge").mkdir(parents=True)
    (acme / ".well-known/acme-challenge/token1").write_text("token1.proof\n")
    out = render_templates(
        base / "out",
        radio_web_bind_port=app_port,
        radio_web_http_port=http_port,
        radio_web_https_port=https_port,
        radio_web_tls_cert=str(tls_pair[0]),
        radio_web_tls_key=str(tls_pair[1]),
        radio_web_nginx_log_dir=str(base / "logs"),
        radio_web_static_dir=str(static),
        radio_web_acme_root=str(acme),
        radio_max_upload_mb=1,
        # Small numbers so the tests reach the limits in a few requests.
        radio_web_login_rate="1r/m",
        radio_web_login_burst=2,
        radio_web_predict_rate="1r/m",
        radio_web_predict_burst=3,
        radio_grafana_port=grafana_port,
    )
    server = ThreadingHTTPServer(("127.0.0.1", app_port), StubApp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # The same stub plays Grafana on its own port: answers say which one nginx reached.
    grafana = ThreadingHTTPServer(("127.0.0.1", grafana_port),
                                  type("StubGrafana", (StubApp,), {"server_name_": "grafana",
                                                                  "headers_": GRAFANA_HEADERS}))
    threading.Thread(target=grafana.serve_forever, daemon=True).start()
    prefix = base / "nginx"
    conf = nginx_prefix(prefix, out / "radio.conf")
    proc = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        for port in (http_port, https_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        proc.kill()
                        pytest.fail(f"nginx did not start: {proc.communicate()[1]}")
                    time.sleep(0.1)
        yield LiveNginx(http_port, https_port, tls_pair[0], grafana_port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.shutdown()
        grafana.shutdown()


def request(port: int, method: str, path: str, body: bytes | None = None, **headers: str):
    """Plain HTTP request to nginx on loopback: (status, lower-case headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    return _exchange(conn, method, path, body, headers)


def secure(live: LiveNginx, method: str, path: str, body: bytes | None = None, **headers: str):
    """HTTPS request that verifies nginx's certificate against the test's own CA file."""
    context = ssl.create_default_context(cafile=str(live.cafile))
    conn = http.client.HTTPSConnection("localhost", live.https_port, timeout=10, context=context)
    return _exchange(conn, method, path, body, headers)


def _exchange(conn: http.client.HTTPConnection, method, path, body, headers):
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_proxies_to_the_app_with_security_headers(live_nginx: LiveNginx) -> None:
    status, headers, body = secure(live_nginx, "GET", "/health")
    assert status == 200
    answer = json.loads(body)
    assert answer["path"] == "/health"
    assert answer["forwarded_for"] == "127.0.0.1"
    assert answer["proto"] == "https"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["strict-transport-security"] == "max-age=31536000"
    assert headers["server"] == "nginx"  # server_tokens off: no version


def test_each_security_header_reaches_the_browser_once(live_nginx: LiveNginx) -> None:
    context = ssl.create_default_context(cafile=str(live_nginx.cafile))
    conn = http.client.HTTPSConnection("localhost", live_nginx.https_port, timeout=10,
                                       context=context)
    try:
        conn.request("GET", "/health")
        resp = conn.getresponse()
        resp.read()
        for name in APP_HEADERS:
            assert len(resp.msg.get_all(name) or []) == 1, name
    finally:
        conn.close()


def test_http_redirects_to_https(live_nginx: LiveNginx) -> None:
    status, headers, _ = request(live_nginx.http_port, "GET", "/predict?x=1", Host="radio.test")
    assert status == 301
    assert headers["location"] == f"https://radio.test:{live_nginx.https_port}/predict?x=1"
    # Uploads over plain HTTP are never proxied: they get the redirect too.
    status, _, body = request(live_nginx.http_port, "POST", "/predict", body=b"image")
    assert status == 301 and b"path" not in body


def test_http_serves_the_acme_challenge(live_nginx: LiveNginx) -> None:
    """certbot's webroot files are served on port 80, not redirected."""
    status, _, body = request(live_nginx.http_port, "GET", "/.well-known/acme-challenge/token1")
    assert (status, body) == (200, b"token1.proof\n")


def test_tls_versions(live_nginx: LiveNginx) -> None:
    """TLS 1.3 by default and 1.2 for older clients, with the role's certificate."""
    for limit, expected in ((None, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2")):
        context = ssl.create_default_context(cafile=str(live_nginx.cafile))
        if limit is not None:
            context.maximum_version = limit
        with socket.create_connection(("127.0.0.1", live_nginx.https_port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as conn:
                assert conn.version() == expected


def test_gzips_json(live_nginx: LiveNginx) -> None:
    status, headers, body = secure(live_nginx, "GET", "/x", **{"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers.get("content-encoding") == "gzip"
    assert json.loads(gzip.decompress(body))["path"] == "/x"


def test_oversized_upload_gets_the_apps_json_error(live_nginx: LiveNginx) -> None:
    # radio_max_upload_mb=1 for this nginx: 1 MiB + 1 byte is refused by nginx itself.
    status, headers, body = secure(live_nginx, "POST", "/upload", body=b"x" * (2**20 + 1))
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "The file is too large; the limit is 1 MB."}


@pytest.mark.parametrize(("path", "burst"), [("/login", 2), ("/predict", 3)])
def test_rate_limit_answers_429_in_json(live_nginx: LiveNginx, path: str, burst: int) -> None:
    """1 request a minute plus the burst pass; the next one is refused by nginx itself."""
    answers = [secure(live_nginx, "POST", path, body=b"{}") for _ in range(burst + 3)]
    statuses = [status for status, _, _ in answers]
    assert statuses[: burst + 1] == [200] * (burst + 1), statuses
    assert statuses[burst + 1 :] == [429, 429], statuses
    _, headers, body = answers[-1]
    assert headers["content-type"] == "application/json"
    assert headers["retry-after"] == "10"
    assert json.loads(body) == {"error": "Too many requests; wait a moment and try again."}
    # Other pages are not limited.
    assert secure(live_nginx, "GET", "/health")[0] == 200


def test_serves_static_files_itself(live_nginx: LiveNginx) -> None:
    status, headers, body = secure(live_nginx, "GET", "/static/app.css")
    assert status == 200
    assert body == b"body { color: black; }\n"
    assert headers["cache-control"] == "public, max-age=3600"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["strict-transport-security"] == "max-age=31536000"


def test_grafana_is_served_under_grafana_from_loopback(live_nginx: LiveNginx) -> None:
    """/grafana/ reaches Grafana (radio_monitoring, 127.0.0.1) with the path unchanged, as
    serve_from_sub_path expects; over HTTPS only; without the app's strict CSP (Grafana's
    pages set their own) but with the headers that still apply."""
    status, headers, body = secure(live_nginx, "GET", "/grafana/api/health")
    assert status == 200
    answer = json.loads(body)
    assert answer["path"] == "/grafana/api/health"
    assert answer["proto"] == "https" and answer["forwarded_for"] == "127.0.0.1"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["strict-transport-security"] == "max-age=31536000"
    # Grafana's own policy, not the app's (which would block Grafana's scripts).
    assert headers["content-security-policy"] == GRAFANA_HEADERS["Content-Security-Policy"]
    assert answer["server"] == "grafana"
    # ... and only /grafana/: the rest of the site is the app's.
    assert json.loads(secure(live_nginx, "GET", "/grafanas")[2])["server"] == "app"
    status, _, _ = request(live_nginx.http_port, "GET", "/grafana/login")
    assert status == 301  # plain HTTP: redirected like every other page


def test_grafana_login_is_rate_limited_on_its_own(live_nginx: LiveNginx) -> None:
    """Password guessing on Grafana's form meets the same limit as the app's login (1 a
    minute plus a burst of 2 here), in a zone of its own."""
    statuses = [secure(live_nginx, "POST", "/grafana/login", body=b"{}")[0] for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429], statuses
    assert secure(live_nginx, "GET", "/grafana/api/health")[0] == 200  # the rest is not limited
