"""The model server follows ``production``: a blue/green switch behind a reverse proxy.

    python -m lifecycle.follow            (the radio-model service on the MLflow host)

Two scoring servers (``mlflow/serve.sh``, each pinned to one version with
``RADIO_SERVE_VERSION``) take turns on two loopback ports (``RADIO_FOLLOW_PORTS``); nginx
listens on the model-server port and proxies to the port named in one upstream file
(``RADIO_FOLLOW_UPSTREAM``; ``RADIO_FOLLOW_RELOAD=none`` when a systemd path unit reloads
nginx on its change, as on the host). Every ``RADIO_FOLLOW_INTERVAL_S`` the follower reads which
version ``production`` names; when it changed (a promotion, a forced deploy, a rollback):

1. start a scoring server for the new version on the idle port, beside the old one;
2. check it: ``/ping``, then a synthetic image through ``/invocations`` must get a valid
   answer naming the new version (else: stop it, keep serving the old one, e-mail);
3. point the upstream file at it and reload the proxy (``RADIO_FOLLOW_RELOAD``): nginx's
   reload lets old workers finish the requests they hold while new ones use the new port;
4. wait until the proxy answers with the new version (``RADIO_FOLLOW_CONFIRM_S``), give
   the old server ``RADIO_FOLLOW_DRAIN_S`` for requests already sent to it, then stop it.
   A proxy that never answers with the new version (its reload did not take) gets the old
   upstream back and the new server is stopped: the old one is never stopped unconfirmed.

No request is dropped: during the switch both servers run, and the proxy never names a
server that has not passed the check. A rollback is the same switch.

A version that fails (step 2 or 4) is retried with exponential backoff
(``RADIO_FOLLOW_RETRY_S``, doubling up to ``RADIO_FOLLOW_RETRY_MAX_S``), not at every
look, and e-mailed once: one message per failing version, however many retries.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from lifecycle import events, notify
from lifecycle import model_versions as reg
from lifecycle.settings import PROJECT_ROOT, Settings, load

log = logging.getLogger("radio.lifecycle.follow")


@dataclass(frozen=True)
class FollowSettings:
    """The switch's own settings (environment variable in each comment)."""

    ports: tuple[int, int] = (8001, 8002)  # RADIO_FOLLOW_PORTS "8001,8002"
    upstream: Path = Path("/etc/radio/model-upstream.conf")  # RADIO_FOLLOW_UPSTREAM
    reload_cmd: tuple[str, ...] = ("nginx", "-s", "reload")  # RADIO_FOLLOW_RELOAD
    proxy_url: str = "http://127.0.0.1:8000"  # MODEL_SERVER_URL: through the proxy
    interval_s: float = 5.0  # RADIO_FOLLOW_INTERVAL_S
    start_deadline_s: float = 300.0  # RADIO_FOLLOW_START_S: a new server must be up by then
    drain_s: float = 30.0  # RADIO_FOLLOW_DRAIN_S: >= the model server's request timeout
    # RADIO_FOLLOW_CONFIRM_S: the proxy must answer with the new version by then
    confirm_s: float = 60.0
    retry_s: float = 30.0  # RADIO_FOLLOW_RETRY_S: first wait after a failed switch
    retry_max_s: float = 3600.0  # RADIO_FOLLOW_RETRY_MAX_S: the doubling stops there
    serve_cmd: tuple[str, ...] = ("bash", str(PROJECT_ROOT / "mlflow" / "serve.sh"))
    log_dir: Path = PROJECT_ROOT / "var" / "lifecycle" / "servers"  # RADIO_FOLLOW_LOGS


def follow_settings(environ: Mapping[str, str] | None = None) -> FollowSettings:
    """:class:`FollowSettings` from the environment."""
    env = os.environ if environ is None else environ
    base = FollowSettings()
    ports = tuple(int(p) for p in env.get("RADIO_FOLLOW_PORTS", "").split(",") if p)
    if ports and (len(ports) != 2 or ports[0] == ports[1]):
        raise ValueError("RADIO_FOLLOW_PORTS must name two different ports")
    # "none": something else reloads the proxy when the file changes (the role's path unit)
    reload_cmd = env.get("RADIO_FOLLOW_RELOAD", "")
    return FollowSettings(
        ports=ports or base.ports,  # type: ignore[arg-type]
        upstream=Path(env.get("RADIO_FOLLOW_UPSTREAM") or base.upstream),
        reload_cmd=() if reload_cmd == "none" else
        tuple(shlex.split(reload_cmd)) if reload_cmd else base.reload_cmd,
        proxy_url=(env.get("MODEL_SERVER_URL") or base.proxy_url).rstrip("/"),
        interval_s=float(env.get("RADIO_FOLLOW_INTERVAL_S", base.interval_s)),
        start_deadline_s=float(env.get("RADIO_FOLLOW_START_S", base.start_deadline_s)),
        drain_s=float(env.get("RADIO_FOLLOW_DRAIN_S", base.drain_s)),
        confirm_s=float(env.get("RADIO_FOLLOW_CONFIRM_S", base.confirm_s)),
        retry_s=float(env.get("RADIO_FOLLOW_RETRY_S", base.retry_s)),
        retry_max_s=float(env.get("RADIO_FOLLOW_RETRY_MAX_S", base.retry_max_s)),
        log_dir=Path(env.get("RADIO_FOLLOW_LOGS") or base.log_dir),
    )


def probe_body() -> dict:
    """A synthetic gradient (never a patient image) in the model's wire format."""
    import numpy as np

    from serving.preprocessing import IMAGE_SIZE
    from serving.wire import build_request

    ramp = np.tile(np.linspace(30, 220, IMAGE_SIZE).astype(np.uint8)[:, None], (1, IMAGE_SIZE))
    return build_request([ramp], heatmap=False)


def answering_version(url: str, timeout_s: float = 30) -> str | None:
    """The version named by a valid answer of ``url``'s ``/invocations``, else None."""
    from serving.schema import RESPONSE, SchemaError, validate

    try:
        resp = requests.post(f"{url}/invocations", json=probe_body(), timeout=timeout_s)
        answer = resp.json()
        validate(answer, RESPONSE)
        return str(answer["predictions"][0]["model"]["version"])
    except (requests.RequestException, ValueError, SchemaError, KeyError, IndexError):
        return None


@dataclass
class Server:
    """One scoring server pinned to a version."""

    version: str
    port: int
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        """Its loopback URL."""
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Failing:
    """A version whose switch failed: how often, and when it may be tried again."""

    attempts: int = 0
    retry_at: float = 0.0
    reasons: list[str] = field(default_factory=list)


def _stop(proc: subprocess.Popen, grace_s: float = 20) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


class Follower:
    """Keeps the proxy on a checked scoring server of ``production`` (module docstring)."""

    def __init__(self, s: Settings, f: FollowSettings,
                 clock: Callable[[], float] = time.monotonic):
        self.s, self.f = s, f
        self.active: Server | None = None
        self.clock = clock  # when retries are due (a test's clock steps by hand)
        self.failing: dict[str, Failing] = {}

    def wanted(self) -> str | None:
        """The version ``production`` names now (None if unset or the registry is down)."""
        try:
            return reg.alias_version(reg.client(self.s.tracking_uri), self.s.model_name,
                                     reg.PRODUCTION)
        except Exception as exc:  # noqa: BLE001 - a registry outage must not stop serving
            log.warning("registry unreadable, serving on: %s", exc)
            return None

    def _start(self, version: str, port: int) -> Server:
        self.f.log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ) | {
            "MODEL_SERVER_HOST": "127.0.0.1", "MODEL_SERVER_PORT": str(port),
            "RADIO_SERVE_VERSION": version, "RADIO_MODEL_NAME": self.s.model_name,
            # Both URIs: a registry URI inherited from the environment would make the child
            # resolve the version in another registry ("version not found", exit 1).
            "MLFLOW_TRACKING_URI": self.s.tracking_uri, "MLFLOW_REGISTRY_URI": self.s.tracking_uri,
            "RADIO_REGISTRY_ROOT": str(self.s.registry_root),
            "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        out = open(self.f.log_dir / f"model-{port}.log", "ab")  # noqa: SIM115 - the child's
        proc = subprocess.Popen(list(self.f.serve_cmd), env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        return Server(version, port, proc)

    def _ready(self, server: Server) -> str:
        """Wait for the new server and check it; '' when fit to serve, else why not."""
        end = time.monotonic() + self.f.start_deadline_s
        while time.monotonic() < end:
            if server.proc.poll() is not None:
                return f"the scoring server exited with {server.proc.returncode}"
            try:
                if requests.get(f"{server.url}/ping", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        else:
            return f"the scoring server was not up within {self.f.start_deadline_s:g} s"
        got = answering_version(server.url)
        if got != server.version:
            return f"check failed: a test image got {got!r} instead of version {server.version}"
        return ""

    def _point_proxy(self, port: int) -> None:
        self.f.upstream.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.f.upstream.parent, delete=False) as tmp:
            tmp.write(f"# written by lifecycle.follow\nserver 127.0.0.1:{port};\n")
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, self.f.upstream)
        if self.f.reload_cmd:
            subprocess.run(list(self.f.reload_cmd), check=True, capture_output=True, timeout=60)

    def _confirmed(self, version: str) -> bool:
        """Whether the proxy answers with ``version`` within ``confirm_s``."""
        end = time.monotonic() + self.f.confirm_s
        while True:
            if answering_version(self.f.proxy_url) == version:
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.2)

    def _failed(self, version: str, why: str) -> bool:
        """Record a failed switch, schedule the retry, e-mail the first failure only."""
        fail = self.failing.setdefault(version, Failing())
        fail.attempts += 1
        fail.reasons.append(why)
        wait = min(self.f.retry_s * 2 ** (fail.attempts - 1), self.f.retry_max_s)
        fail.retry_at = self.clock() + wait
        old = self.active.version if self.active else "none"
        events.record(self.s.events_log, "switch_failed", version=version, reason=why,
                      attempt=fail.attempts, retry_in_s=wait)
        log.error("version %s failed (attempt %d, next in %g s): %s", version, fail.attempts,
                  wait, why)
        if fail.attempts == 1:
            notify.send(f"model server could not switch to version {version}",
                        f"{why}\nStill serving version {old}. Retrying with backoff "
                        f"(first in {wait:g} s); no further e-mail for this version.")
        return False

    def switch(self, version: str) -> bool:
        """Steps 1-4 of the module docstring; False (old server kept) if the switch fails."""
        old = self.active
        port = self.f.ports[1] if old and old.port == self.f.ports[0] else self.f.ports[0]
        log.info("starting version %s on port %d", version, port)
        new = self._start(version, port)
        why = self._ready(new)
        if why:
            _stop(new.proc)
            return self._failed(version, why)
        self._point_proxy(port)
        if not self._confirmed(version):
            if old is not None:  # back to the server that still answers; it keeps running
                self._point_proxy(old.port)
                _stop(new.proc)
                return self._failed(version, f"the proxy did not answer with version "
                                             f"{version} within {self.f.confirm_s:g} s")
            # Nothing older to keep: serve on, the proxy may come up later.
            log.warning("the proxy does not answer with version %s yet", version)
        self.active = new
        self.failing.pop(version, None)
        if old is not None:
            time.sleep(self.f.drain_s)
            _stop(old.proc)
        events.record(self.s.events_log, "switched", version=version,
                      previous=old.version if old else None, port=port)
        log.info("serving version %s on port %d", version, port)
        return True

    def _due(self, version: str) -> bool:
        """Whether ``version`` may be tried now (never failed, or its backoff is over)."""
        fail = self.failing.get(version)
        return fail is None or self.clock() >= fail.retry_at

    def step(self) -> None:
        """One look at the registry; switch if production moved (and a retry is due)."""
        want = self.wanted()
        if self.active is not None and self.active.proc.poll() is not None:
            log.error("scoring server of version %s died; restarting", self.active.version)
            dead, self.active = self.active, None
            want = want or dead.version
        if want is None or (self.active is not None and want == self.active.version):
            return
        if self._due(want):
            self.switch(want)

    def close(self) -> None:
        """Stop the server(s) this follower started."""
        if self.active is not None:
            _stop(self.active.proc)


def main() -> int:
    """Follow ``production`` until SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    follower = Follower(load(), follow_settings())
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        while not stopping:
            follower.step()
            for _ in range(int(follower.f.interval_s * 10)):
                if stopping:
                    break
                time.sleep(0.1)
    finally:
        follower.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
