"""``make bench-load``: a bounded load test of the whole stack on loopback.

8 clients (RADIO_LOAD_CLIENTS) with keep-alive sessions upload real val X-rays to /predict
for 60 s (RADIO_LOAD_SECONDS) against the real model server and the gunicorn app (default
settings). Prints latency percentiles (p50/p95/p99), throughput, errors by status (any 5xx
is a failure: exit status 1), and memory of the app workers and the model server before and
after. The last line is one JSON object. Needs ../shared/data (RADIO_BENCH_DATA).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from bench.stack import ROOT, Stack

DATA = Path(os.environ.get("RADIO_BENCH_DATA", ROOT.parent / "shared" / "data"))
CLIENTS = int(os.environ.get("RADIO_LOAD_CLIENTS", "8"))
SECONDS = float(os.environ.get("RADIO_LOAD_SECONDS", "60"))


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def run(url: str, images: list[bytes], auth: dict[str, str]) -> tuple[list[float], Counter]:
    """Latencies (ms) of the successful calls and the count of every status."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    end = time.monotonic() + SECONDS

    def client(i: int) -> None:
        session = requests.Session()
        session.headers.update(auth)
        n = i
        while time.monotonic() < end:
            data = images[n % len(images)]
            n += CLIENTS
            t0 = time.perf_counter()
            try:
                r = session.post(f"{url}/predict", files={"file": ("x", data)}, timeout=60)
                status = r.status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                statuses[status] += 1
                if status == 200:
                    latencies.append(ms)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, statuses


def main() -> int:
    files = sorted(p for p in DATA.glob("*/val/*/*")
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        sys.exit(f"no val X-rays under {DATA}: the load test needs ../shared/data")
    images = [p.read_bytes() for p in files]
    with tempfile.TemporaryDirectory(prefix="radio-bench-load-") as tmp:
        stack = Stack(Path(tmp))
        try:
            before = stack.memory()
            latencies, statuses = run(stack.url, images, stack.auth)
            after = stack.memory()
        finally:
            stack.stop()
    total = sum(statuses.values())
    errors = {str(k): v for k, v in statuses.items() if k != 200}
    server_errors = sum(v for k, v in statuses.items() if not isinstance(k, int) or k >= 500)
    result = {
        "clients": CLIENTS, "seconds": SECONDS, "requests": total,
        "ok": statuses.get(200, 0), "errors": errors, "server_errors": server_errors,
        "rps": round(total / SECONDS, 2),
        "p50_ms": round(pct(latencies, 50), 1) if latencies else None,
        "p95_ms": round(pct(latencies, 95), 1) if latencies else None,
        "p99_ms": round(pct(latencies, 99), 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "before": before, "after": after,
    }
    print(f"{CLIENTS} clients, {SECONDS:g} s, {len(images)} val X-rays: {total} requests "
          f"({result['rps']}/s), {result['ok']} ok, errors {errors or 'none'}")
    print(f"latency ms: p50 {result['p50_ms']}  p95 {result['p95_ms']}  p99 {result['p99_ms']}")
    print(f"app worker RSS MB: {before['app_worker_rss_mb']} before, "
          f"{after['app_worker_rss_mb']} after (peak {after['app_worker_peak_rss_mb']}); "
          f"model server {before['model_server_rss_mb']} -> {after['model_server_rss_mb']}")
    print(json.dumps(result, sort_keys=True))
    return 1 if server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
