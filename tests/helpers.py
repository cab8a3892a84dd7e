"""Helpers shared by the tests (no test logic here): server environments, fake servers,
hostile files. Processes are started and stopped with ``bench/procs.py`` (re-exported)."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from bench.procs import free_port, log_tail, start, stop, wait_until  # noqa: F401 - for tests

ROOT = Path(__file__).resolve().parent.parent

MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_USERNAME",
              "MLFLOW_TRACKING_PASSWORD")


def _forget_mlflow_target() -> None:
    """MLflow keeps ``set_tracking_uri``/``set_registry_uri`` in module globals as well as
    in the environment; with the globals cleared it reads the environment again."""
    if "mlflow" in sys.modules:
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        tracking_utils._tracking_uri = None
        registry_utils._registry_uri = None


@contextlib.contextmanager
def mlflow_target(tracking_uri: str | None = None) -> Iterator[None]:
    """Inside the block MLflow talks to ``tracking_uri`` (None: wherever it was); after it,
    to where it did before, whatever the block (or a training inside it) pointed it at."""
    saved = {k: os.environ.get(k) for k in MLFLOW_ENV}
    if tracking_uri is not None:
        _forget_mlflow_target()
        os.environ.pop("MLFLOW_REGISTRY_URI", None)
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    try:
        yield
    finally:
        _forget_mlflow_target()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def register_again(registry: Path, version: str, name: str = "radio-cxr") -> str:
    """A new version of ``name`` on the logged model of ``version`` (same files, so the same
    answers), in a scratch copy of the shipped registry (``registry``: its folder); its
    number. The shipped registry keeps only its production version (docs/model.md, "The registry
    that ships"): tests that switch between two real versions make the second one so."""
    registry = Path(registry).resolve()
    uri = f"sqlite:///{registry / 'mlflow.db'}"
    from lifecycle import model_versions as reg

    cl = reg.client(uri)
    mv = cl.get_model_version(name, version)
    tags = {k: v for k, v in mv.tags.items() if k not in ("deploy_tag", "archived")}
    # MLflow resolves a models:/ source through the default tracking URI, from the folder
    # the registry's relative artefact paths start at
    with mlflow_target(uri), contextlib.chdir(registry.parent):
        new = cl.create_model_version(name, mv.source, run_id=mv.run_id,
                                      tags=tags | {"parent_version": str(version)})
    return str(new.version)


SHARED_DATA = ROOT.parent / "shared" / "data"


def server_env(**extra: str) -> dict[str, str]:
    """Environment for a server a test starts: the venv first on PATH, telemetry off, and
    none of the MLflow URIs that in-process tests (training) leave pointing at scratch
    registries: a server started later must use the registry it is given."""
    leaked = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    env = {k: v for k, v in os.environ.items() if k not in leaked}
    venv_bin = ROOT / ".venv" / "bin"
    path = os.path.dirname(sys.executable)
    if venv_bin.is_dir():
        path = f"{venv_bin}{os.pathsep}{path}"
    env["PATH"] = f"{path}{os.pathsep}{env.get('PATH', '')}"
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    env.update(extra)
    return env


def ask_model_server(
    cmd: list[str], env: dict[str, str], cwd: Path, port: int, image, log: Path
) -> dict:
    """Start a model server, send one image to /invocations, stop it; the first prediction."""
    from serving.wire import build_request

    proc = start(cmd, env, log, cwd=cwd)
    try:
        wait_until(f"http://127.0.0.1:{port}/ping", proc, 180, lambda r: r.ok)
        r = requests.post(
            f"http://127.0.0.1:{port}/invocations", json=build_request([image]), timeout=60
        )
        assert r.status_code == 200, r.text
        return r.json()["predictions"][0]
    finally:
        stop(proc)


def gunicorn_cmd() -> list[str]:
    """The web app under gunicorn with the project's settings (app/platform/gunicorn.conf.py)."""
    return [sys.executable, "-m", "gunicorn", "-c", "app/platform/gunicorn.conf.py",
                "app.platform.wsgi:app"]


def mlflow_serve_cmd(port: int) -> list[str]:
    """`mlflow models serve` of the production alias on ``port``."""
    return [
        "mlflow",
        "models",
        "serve",
        "-m",
        "models:/radio-cxr@production",
        "-p",
        str(port),
        "--env-manager",
        "local",
    ]


class SilentServer:
    """A TCP server that accepts connections and never answers: a hung model server."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)  # kept open, never read, never answered

    def close(self) -> None:
        """Stop accepting and drop every held connection."""
        self.sock.close()
        for conn in self.accepted:
            conn.close()


class DroppingProxy:
    """A TCP proxy to ``upstream`` that drops its first connection after reading the request.

    Looks to the client like a model server that restarted, or a pooled keep-alive
    connection it had already closed; every later connection is forwarded untouched.
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            if self.connections == 1:
                conn.recv(65536)
                conn.close()
                continue
            up = socket.create_connection(self.upstream)
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        """Stop accepting new connections."""
        self.sock.close()


# --- bad and good inputs, generated on the fly -------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 20000, bits: int = 1, colour: int = 0) -> bytes:
    """A valid PNG of side x side zeros (default 1-bit greyscale): tiny on disk, huge decoded.

    ``colour`` is the PNG colour type (0 grey, 2 RGB, 4 grey+alpha, 6 RGBA)."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row = b"\x00" + bytes((side * bits * channels + 7) // 8)  # filter byte + samples
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(side)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, bits, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


def synthetic_image(fmt: str = "PNG", size: tuple[int, int] = (512, 512)) -> bytes:
    """A noisy greyscale image (not an X-ray) encoded as PNG or JPEG."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(size[1], size[0]), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L").save(buf, format=fmt)
    return buf.getvalue()


def truncated_jpeg() -> bytes:
    """A JPEG cut after 60% of its bytes."""
    data = synthetic_image("JPEG")
    return data[: int(len(data) * 0.6)]


def first_val_xray() -> Path | None:
    """The first NIH adult normal val X-ray in ../shared/data, or None if the data is absent."""
    folder = SHARED_DATA / "nih-adult-normal" / "val" / "Normal"
    files = sorted(folder.glob("*.png")) if folder.is_dir() else []
    return files[0] if files else None


def val_xrays() -> list[Path]:
    """Every val X-ray of every source in ../shared/data (empty if absent)."""
    return sorted(
        p for p in SHARED_DATA.glob("*/val/*/*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")
    )


# --- raw HTTP on real sockets, for slow and malformed clients ----------------------------


def raw_request(url: str, data: bytes, timeout_s: float = 30.0) -> bytes:
    """Send ``data`` as-is on a new connection and read until the server closes it."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout_s) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


class SlowUpload(threading.Thread):
    """A client that announces ``length`` body bytes of /predict, then sends a byte every
    ``every_s`` seconds (``every_s=None``: sends nothing more); keeps what the server says."""

    def __init__(
        self, url: str, length: int = 100_000, every_s: float | None = 0.5,
        token: str | None = None,
    ) -> None:
        super().__init__(daemon=True)
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        head = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: "
                f"multipart/form-data; boundary=B\r\nContent-Length: {length}\r\n\r\n").encode()
        self.sock.sendall(head + b"--B\r\n")
        self.length, self.every_s = length, every_s
        self.answer = b""

    def run(self) -> None:
        self.sock.setblocking(True)
        self.sock.settimeout(0.05 if self.every_s else 60)
        sent = 5
        try:
            while sent < self.length:
                try:
                    chunk = self.sock.recv(65536)
                except TimeoutError:
                    chunk = None
                if chunk is not None:  # the server answered (or closed): stop sending
                    self.answer = chunk + self._rest()
                    return
                if self.every_s:
                    time.sleep(self.every_s)
                    self.sock.sendall(b"x")
                    sent += 1
        except OSError:
            pass
        finally:
            self.sock.close()

    def _rest(self) -> bytes:
        self.sock.settimeout(10)
        chunks = []
        try:
            while chunk := self.sock.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
        return b"".join(chunks)


def kept(cfg: Any, request_id: str) -> tuple[dict[str, Any] | None, bytes | None]:
    """What Radio kept of one request under the app Config ``cfg``: its prediction row (as
    a dict of columns, None when there is none) and its stored image (None when absent)."""
    from app.store import db, images
    from app.store.db.models import Prediction

    with db.session_scope(cfg.db_url) as session:
        row = session.get(Prediction, request_id)
        if row is None:
            return None, None
        columns = {c.name: getattr(row, c.name) for c in Prediction.__table__.columns}
    try:
        image = images.load(images.location(cfg), columns["image_sha256"],
                            columns["image_format"])
    except images.ImageMissing:
        image = None
    return columns, image


def stored_images(cfg: Any) -> list[Any]:
    """Every image in the store of the app Config ``cfg``."""
    from app.store import images

    return list(images.listing(images.location(cfg)))
