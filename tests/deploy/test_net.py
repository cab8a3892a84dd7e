"""SSH wait and /health smoke test, against servers on loopback."""

from __future__ import annotations

import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deploy.net import NotReadyError, smoke_test, wait_for_ssh


class Greeter(socketserver.BaseRequestHandler):
    greeting = b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10\r\n"

    def handle(self) -> None:
        self.request.sendall(self.greeting)


class Impostor(Greeter):
    greeting = b"HTTP/1.1 400 Bad Request\r\n"


def serve(handler: type[socketserver.BaseRequestHandler]) -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def sshd() -> Iterator[int]:
    yield from serve(Greeter)


@pytest.fixture()
def impostor() -> Iterator[int]:
    yield from serve(Impostor)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeClock:
    """Time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_ssh_banner_is_ready(sshd: int) -> None:
    clock = FakeClock()
    assert wait_for_ssh("127.0.0.1", sshd, clock=clock, sleep=clock.sleep) == 0
    assert clock.sleeps == []


def test_closed_port_times_out_with_the_reason() -> None:
    clock = FakeClock()
    port = closed_port()
    with pytest.raises(
        NotReadyError, match=rf"SSH on 127.0.0.1:{port} not ready after 30s \(.*refused"
    ):
        wait_for_ssh("127.0.0.1", port, timeout_s=30, interval_s=5, clock=clock, sleep=clock.sleep)
    # Tries at 0, 5, ... 30 s, then gives up rather than wait past the timeout.
    assert clock.sleeps == [5.0] * 6


def test_a_non_ssh_greeting_is_not_ready(impostor: int) -> None:
    clock = FakeClock()
    with pytest.raises(NotReadyError, match="unexpected greeting 'HTTP/1.1 400"):
        wait_for_ssh(
            "127.0.0.1", impostor, timeout_s=10, interval_s=5, clock=clock, sleep=clock.sleep
        )


class Health(BaseHTTPRequestHandler):
    answers: list[tuple[int, dict]] = []

    def do_GET(self) -> None:  # noqa: N802
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def health() -> Iterator[tuple[str, type[Health]]]:
    handler = type("H", (Health,), {"answers": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health", handler
    finally:
        server.shutdown()
        server.server_close()


def test_smoke_waits_for_ok(health) -> None:
    url, handler = health
    handler.answers = [(502, {"error": "bad gateway"}), (200, {"status": "ok", "app": "ok"})]
    sleeps: list[float] = []
    assert smoke_test(url, attempts=3, delay_s=2, sleep=sleeps.append)["status"] == "ok"
    assert sleeps == [2]


def test_smoke_reports_a_degraded_app(health) -> None:
    url, handler = health
    handler.answers = [(200, {"status": "degraded", "model_server": {"ok": False}})]
    with pytest.raises(NotReadyError, match=r'not healthy after 2 attempts: HTTP 200 .*"degraded"'):
        smoke_test(url, attempts=2, delay_s=0, sleep=lambda _: None)


def test_smoke_reports_an_unreachable_host() -> None:
    url = f"http://127.0.0.1:{closed_port()}/health"
    with pytest.raises(NotReadyError, match="refused"):
        smoke_test(url, attempts=1, sleep=lambda _: None)


@pytest.fixture()
def tls_health(health, tls_pair) -> Iterator[tuple[str, type[Health]]]:
    """The health stub behind TLS with a self-signed certificate for localhost."""
    url, handler = health
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, tls_pair))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://localhost:{server.server_address[1]}/health", handler
    finally:
        server.shutdown()
        server.server_close()


def test_smoke_refuses_an_untrusted_certificate_by_default(tls_health) -> None:
    url, handler = tls_health
    handler.answers = [(200, {"status": "ok"})]
    with pytest.raises(NotReadyError, match="CERTIFICATE_VERIFY_FAILED"):
        smoke_test(url, attempts=1, sleep=lambda _: None)


def test_smoke_warns_about_a_self_signed_certificate(tls_health, capsys) -> None:
    url, handler = tls_health
    handler.answers = [(502, {}), (200, {"status": "ok"})]
    body = smoke_test(url, attempts=2, sleep=lambda _: None, allow_self_signed=True)
    assert body["status"] == "ok"
    err = capsys.readouterr().err
    assert err.count("certificate this machine does not trust") == 1, err
