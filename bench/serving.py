"""``make bench``: the reference design and Radio's path, side by side, on the same X-rays.

(a) reference: preprocess to 224x224x3 float32/255, POST ``{"inputs": [[[...]]]}`` JSON to
    ``mlflow models serve`` running the same Keras network with ``keras.Model.predict``;
(b) Radio: POST the file to ``/predict`` of the gunicorn app, which preprocesses and calls
    the model server (``mlflow/serve.sh``: ONNX copy, compact uint8 request).

The reference request bodies are serialised once before timing (the reference client's
own JSON cost is left out, in its favour). Radio's times include the upload, decoding,
resizing, the model call, the heatmap, storing the upload (each one new bytes) and
committing its row. Prints a table and, as the
very last line, one JSON object.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import statistics
import struct
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from bench import procs, reference
from bench.stack import Stack, env_base
from serving.preprocessing import preprocess
from serving.wire import build_request

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RADIO_BENCH_DATA", ROOT.parent / "shared" / "data"))
ROUNDS = int(os.environ.get("RADIO_BENCH_ROUNDS", "5"))
CONCURRENCY_S = float(os.environ.get("RADIO_BENCH_SECONDS", "10"))
N_IMAGES = int(os.environ.get("RADIO_BENCH_IMAGES", "4"))


def largest_val_images(n: int) -> list[tuple[str, bytes]]:
    """The ``n`` val X-rays with the most pixels (ties: the largest files)."""
    files = [p for p in DATA.glob("*/val/*/*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
    if not files:
        sys.exit(f"no val X-rays under {DATA}: the bench needs ../shared/data")

    def key(p: Path):
        with Image.open(p) as img:
            return (img.size[0] * img.size[1], p.stat().st_size)

    return [(p.name, p.read_bytes()) for p in sorted(files, key=key, reverse=True)[:n]]


def as_2048(images: list[tuple[str, bytes]], fmt: str) -> list[tuple[str, bytes]]:
    """The same X-rays as 2048x2048 greyscale files, like a digital radiograph."""
    out = []
    for name, data in images:
        img = (
            Image.open(io.BytesIO(data)).convert("L").resize((2048, 2048), Image.Resampling.BICUBIC)
        )
        buf = io.BytesIO()
        img.save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        out.append((f"{name}@2048.{fmt.lower()}", buf.getvalue()))
    return out


def tagged(data: bytes, n: int) -> bytes:
    """The same picture as new bytes: ``data`` with a comment carrying ``n`` (a PNG tEXt
    chunk after IHDR, a JPEG COM segment after SOI)."""
    text = f"radio-bench {n}".encode()
    if data.startswith(b"\x89PNG"):
        ihdr_end = 8 + 12 + struct.unpack(">I", data[8:12])[0]
        chunk = b"tEXt" + b"Comment\x00" + text
        return (data[:ihdr_end] + struct.pack(">I", len(chunk) - 4) + chunk
                + struct.pack(">I", zlib.crc32(chunk)) + data[ihdr_end:])
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]


class Radio(Stack):
    """Radio's stack (bench/stack.py); requests are file uploads to /predict. Each upload is
    new bytes (:func:`tagged`), so each one is stored, as a clinic's uploads would be; the
    same bytes again would only be marked as stored again."""

    _count = itertools.count()

    def call(self, session: requests.Session, name: str, data: bytes) -> bool:
        data = tagged(data, next(self._count))
        r = session.post(f"{self.url}/predict", files={"file": (name, data)}, headers=self.auth,
                         timeout=60)
        return r.status_code == 200 and r.json().get("status") in ("ok", "not_xray")

    def memory(self) -> dict[str, float]:
        mem = super().memory()
        return {"rss_model_server_mb": mem["model_server_rss_mb"],
                "rss_app_worker_mb": mem["app_worker_rss_mb"]}


class Reference:
    """``mlflow models serve`` of the same Keras network; requests are JSON floats."""

    def __init__(self, tmp: Path, keras_path: Path):
        reg = tmp / "refreg"
        reg.mkdir()
        uri = reference.build(keras_path, reg)
        self.port = procs.free_port()
        env = env_base() | {"MLFLOW_TRACKING_URI": f"sqlite:///{reg / 'mlflow.db'}"}
        self.server = procs.start(
            [
                "mlflow",
                "models",
                "serve",
                "-m",
                uri,
                "-p",
                str(self.port),
                "--env-manager",
                "local",
            ],
            env,
            tmp / "reference.log",
            tmp,
        )
        self.cold_start_s = procs.wait_until(f"http://127.0.0.1:{self.port}/ping", self.server)
        self.url = f"http://127.0.0.1:{self.port}/invocations"
        self.bodies: dict[str, bytes] = {}

    def prepare(self, name: str, data: bytes) -> None:
        self.bodies[name] = reference.reference_body(data)

    def call(self, session: requests.Session, name: str, data: bytes) -> bool:
        r = session.post(
            self.url,
            data=self.bodies[name],
            headers={"Content-Type": "application/json"},
            timeout=120,
        )
        return r.status_code == 200

    def memory(self) -> float:
        return sum(procs.rss_mb(p) for p in procs.tree(self.server.pid))

    def stop(self) -> None:
        procs.stop(self.server)


def sequential(target, images, rounds: int) -> tuple[list[float], int]:
    """Latencies (ms) of ``rounds`` passes over ``images``, one keep-alive client."""
    session, times, errors = requests.Session(), [], 0
    for _ in range(rounds):
        for name, data in images:
            t0 = time.perf_counter()
            ok = target.call(session, name, data)
            times.append((time.perf_counter() - t0) * 1000)
            errors += not ok
    return times, errors


def concurrent(target, images, clients: int, seconds: float) -> tuple[float, int]:
    """Requests per second and errors with ``clients`` keep-alive clients for ``seconds``."""
    done, errors, lock = [0], [0], threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(i: int) -> None:
        session, k = requests.Session(), i
        while time.perf_counter() < stop_at:
            name, data = images[k % len(images)]
            try:
                ok = target.call(session, name, data)
            except requests.RequestException:
                ok = False
            with lock:
                done[0] += 1
                errors[0] += not ok
            k += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0] / (time.perf_counter() - t0), errors[0]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> int:
    """Run everything, print the table and the JSON line."""
    from serving.served_model import ALIAS, MODEL_NAME, model_path, resolve

    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow' / 'mlflow.db'}")
    os.chdir(ROOT)
    keras_path = model_path(MODEL_NAME, resolve(MODEL_NAME, ALIAS)) / "artifacts" / "ensemble.keras"
    sets = {"val-largest": largest_val_images(N_IMAGES)}
    sets["2048-png"] = as_2048(sets["val-largest"], "PNG")
    sets["2048-jpeg"] = as_2048(sets["val-largest"], "JPEG")
    result: dict[str, float] = {}
    rows = []
    errors = 0
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        radio = Radio(tmp)
        ref = Reference(tmp, keras_path)
        try:
            for images in sets.values():
                for name, data in images:
                    ref.prepare(name, data)
            for target in (radio, ref):  # warm-up: first calls build graphs and pools
                sequential(target, sets["val-largest"], 1)
            for set_name, images in sets.items():
                for label, target in (("reference", ref), ("radio", radio)):
                    times, errs = sequential(target, images, ROUNDS)
                    errors += errs
                    rows.append((set_name, label, pct(times, 50), pct(times, 95), len(times), errs))
                    suffix = "" if set_name == "val-largest" else "_" + set_name.replace("-", "_")
                    result[f"p50_ms_{label}{suffix}"] = round(pct(times, 50), 2)
                    result[f"p95_ms_{label}{suffix}"] = round(pct(times, 95), 2)
            for label, target in (("reference", ref), ("radio", radio)):
                rps, errs = concurrent(target, sets["val-largest"], 4, CONCURRENCY_S)
                errors += errs
                result[f"rps_c4_{label}"] = round(rps, 2)
            arr = preprocess(sets["val-largest"][0][1])
            result["payload_bytes_reference"] = len(ref.bodies[sets["val-largest"][0][0]])
            result["payload_bytes_radio"] = len(json.dumps(build_request([arr])).encode())
            result.update({k: round(v, 1) for k, v in radio.memory().items()})
            result["rss_reference_server_mb"] = round(ref.memory(), 1)
            result["cold_start_s_model_server"] = round(radio.cold_start_s, 2)
            result["cold_start_s_reference"] = round(ref.cold_start_s, 2)
        finally:
            radio.stop()
            ref.stop()
    result["errors"] = errors
    result["cpu_count"] = os.cpu_count() or 0
    print(f"{'images':12} {'path':10} {'p50 ms':>9} {'p95 ms':>9} {'n':>4} {'errors':>6}")
    for set_name, label, p50, p95, n, errs in rows:
        print(f"{set_name:12} {label:10} {p50:9.1f} {p95:9.1f} {n:4d} {errs:6d}")
    print(
        f"4 clients, {CONCURRENCY_S:.0f} s: reference {result['rps_c4_reference']} req/s, "
        f"radio {result['rps_c4_radio']} req/s"
    )
    print(
        f"payload: reference {result['payload_bytes_reference']:,} B, "
        f"radio {result['payload_bytes_radio']:,} B"
    )
    print(
        f"memory: model server {result['rss_model_server_mb']} MB (reference "
        f"{result['rss_reference_server_mb']} MB), app worker {result['rss_app_worker_mb']} MB"
    )
    print(
        f"speed-up p50: {result['p50_ms_reference'] / result['p50_ms_radio']:.1f}x; "
        f"throughput: {result['rps_c4_radio'] / max(result['rps_c4_reference'], 1e-9):.1f}x; "
        f"median of {statistics.median([r[4] for r in rows])} requests per row"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
