"""``make bench-scale``: the scale-out model tier, simulated on loopback.

Two model servers (``bash mlflow/serve.sh`` with their own MODEL_SERVER_PORT) behind a
local nginx that stands in for the internal load balancer, and the gunicorn app with
``MLFLOW_URL`` pointing at nginx. Concurrent clients upload X-rays to ``/predict``:

1. through nginx to one server;
2. through nginx to both;
3. to both, killing one (SIGKILL) half-way through the run.

Prints requests per second and failed requests of each run, and, as the very last
line, one JSON object. Retries: nginx passes a request that fails to connect, or whose
server dies mid-answer, to the other server once (``proxy_next_upstream``; scoring is a
pure function, so a repeat is harmless); the app's own single retry on connection errors
stays as it is. On a machine with N cores, two servers can only beat one if the first
left cores idle: the numbers say what this machine did, not what two t3.mediums do.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench import procs

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RADIO_BENCH_DATA", ROOT.parent / "shared" / "data"))
SECONDS = float(os.environ.get("RADIO_BENCH_SECONDS", "20"))
CLIENTS = int(os.environ.get("RADIO_BENCH_CLIENTS", "4"))
N_IMAGES = int(os.environ.get("RADIO_BENCH_IMAGES", "4"))

# Workers run as the bench's user, so they can write their temp files in its
# private temp directory (nginx started as root would switch to nobody).
PROXY_CONF = """\
user {user};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    access_log off;
    client_max_body_size 50m;
    upstream models {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://models;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 60s;
            # A server that vanished (its address no longer answers at all) costs a
            # request 2 s before it goes to the next one, not nginx's default 60 s.
            proxy_connect_timeout 2s;
            # Like a load balancer's health check, but per request: a server that
            # refuses or drops the connection is skipped for 10 s, and the request
            # goes to the next one (once).
            proxy_next_upstream error timeout http_502 non_idempotent;
            proxy_next_upstream_tries 2;
        }}
    }}
}}
"""


def val_images(n: int) -> list[tuple[str, bytes]]:
    """The first ``n`` validation X-rays by path (the same ones on every run)."""
    files = sorted(
        p for p in DATA.glob("*/val/*/*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")
    )
    if not files:
        sys.exit(f"no val X-rays under {DATA}: the bench needs ../shared/data")
    return [(p.name, p.read_bytes()) for p in files[:n]]


def env_base() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    return env


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        sys.exit("nginx is needed for the local load balancer (apt-get install nginx-light)")
    return found


class Proxy:
    """nginx on a loopback port, balancing over the given model servers: loopback ports,
    or ``host:port`` addresses (the servers of tests/deploy/test_fleet.py, each in its own
    network namespace)."""

    def __init__(self, tmp: Path, ports: list[int] | list[str]):
        self.port = procs.free_port()
        prefix = tmp / f"proxy-{self.port}"
        prefix.mkdir(parents=True)
        addresses = [p if isinstance(p, str) else f"127.0.0.1:{p}" for p in ports]
        servers = "\n".join(
            f"        server {a} max_fails=1 fail_timeout=10s;" for a in addresses
        )
        conf = prefix / "nginx.conf"
        conf.write_text(
            PROXY_CONF.format(
                prefix=prefix, port=self.port, servers=servers, user=getpass.getuser()
            )
        )
        cmd = [nginx_binary(), "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"]
        self.proc = procs.start(cmd, env_base(), prefix / "nginx.out")
        self.url = f"http://127.0.0.1:{self.port}"
        # No /ping of its own: any answer (even a 502 from a booting server) means up.
        procs.wait_until(f"{self.url}/ping", self.proc, deadline_s=15, ok=lambda r: True)

    def stop(self) -> None:
        procs.stop(self.proc)


class Cluster:
    """Model servers, and the app pointed at a proxy in front of them."""

    def __init__(self, tmp: Path, n_servers: int):
        self.tmp = tmp
        self.servers: list[tuple[int, object]] = []
        for i in range(n_servers):
            port = procs.free_port()
            env = env_base() | {"MODEL_SERVER_PORT": str(port)}
            proc = procs.start(["bash", "mlflow/serve.sh"], env, tmp / f"model-{i}.log", ROOT)
            self.servers.append((port, proc))
        for port, proc in self.servers:
            procs.wait_until(f"http://127.0.0.1:{port}/ping", proc)
        self.proxy: Proxy | None = None
        self.app = None

    def route(self, n: int) -> None:
        """(Re)start the proxy over the first ``n`` servers and the app pointed at it."""
        self.stop_front()
        self.proxy = Proxy(self.tmp, [port for port, _ in self.servers[:n]])
        app_port = procs.free_port()
        env = env_base() | {
            "PORT": str(app_port),
            "MLFLOW_URL": self.proxy.url,
            "RADIO_DATA_DIR": str(self.tmp / f"data-{n}"),
        }
        self.app = procs.start(
            [sys.executable, "-m", "gunicorn", "-c", "app/platform/gunicorn.conf.py",
                 "app.platform.wsgi:app"],
            env,
            self.tmp / f"app-{n}.log",
            ROOT,
        )
        procs.wait_until(f"http://127.0.0.1:{app_port}/health", self.app)
        self.predict_url = f"http://127.0.0.1:{app_port}/predict"
        self.auth = procs.bearer(env)  # /predict needs a clinician's token

    def kill_server(self, index: int) -> None:
        """SIGKILL a model server and its children: a crash, not a clean shutdown."""
        proc = self.servers[index][1]
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        except ProcessLookupError:
            pass

    def stop_front(self) -> None:
        if self.app is not None:
            procs.stop(self.app)
            self.app = None
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None

    def stop(self) -> None:
        self.stop_front()
        for _, proc in self.servers:
            procs.stop(proc)  # type: ignore[arg-type]


def load(
    url: str,
    images: list[tuple[str, bytes]],
    clients: int,
    seconds: float,
    at_half: object = None,
    auth: dict[str, str] | None = None,
) -> dict[str, float]:
    """``clients`` threads uploading in a loop for ``seconds``; ``at_half()`` runs mid-way."""
    ok, failed, lock = [0], [0], threading.Lock()
    statuses: dict[str, int] = {}
    stop_at = time.monotonic() + seconds

    def client(i: int) -> None:
        session = requests.Session()
        session.headers.update(auth or {})
        n = i
        while time.monotonic() < stop_at:
            name, data = images[n % len(images)]
            n += 1
            try:
                r = session.post(url, files={"file": (name, data)}, timeout=90)
                good = r.status_code == 200 and r.json().get("status") in ("ok", "not_xray")
                key = str(r.status_code)
            except (requests.RequestException, ValueError) as exc:
                good, key = False, type(exc).__name__
            with lock:
                (ok if good else failed)[0] += 1
                if not good:
                    statuses[key] = statuses.get(key, 0) + 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    if at_half is not None:
        time.sleep(seconds / 2)
        at_half()  # type: ignore[operator]
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    return {
        "requests": ok[0] + failed[0],
        "failed": failed[0],
        "failures_by_status": statuses,
        "rps": round(ok[0] / elapsed, 2),
        "seconds": round(elapsed, 1),
    }


def run(seconds: float = SECONDS, clients: int = CLIENTS, kill_only: bool = False) -> dict:
    """The three runs (or only the kill run); returns their results."""
    images = val_images(N_IMAGES)
    results: dict[str, object] = {
        "clients": clients,
        "cpus": os.cpu_count(),
        "images": len(images),
    }
    with tempfile.TemporaryDirectory(prefix="radio-bench-scale-") as tmp:
        cluster = Cluster(Path(tmp), 2)
        try:
            if not kill_only:
                for n in (1, 2):
                    cluster.route(n)
                    load(cluster.predict_url, images, clients, 2, auth=cluster.auth)  # warm-up
                    results[f"servers_{n}"] = load(
                        cluster.predict_url, images, clients, seconds, auth=cluster.auth
                    )
            cluster.route(2)
            load(cluster.predict_url, images, clients, 2, auth=cluster.auth)
            kill = lambda: cluster.kill_server(1)  # noqa: E731
            results["servers_2_one_killed"] = load(
                cluster.predict_url, images, clients, seconds, at_half=kill, auth=cluster.auth
            )
        finally:
            cluster.stop()
    return results


def main() -> int:
    results = run()
    print(f"{'run':<24}{'req/s':>8}{'requests':>10}{'failed':>8}")
    for key in ("servers_1", "servers_2", "servers_2_one_killed"):
        r = results[key]
        print(f"{key:<24}{r['rps']:>8}{r['requests']:>10}{r['failed']:>8}")  # type: ignore[index]
    print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
