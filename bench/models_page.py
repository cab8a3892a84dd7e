"""``make bench-models``: the admin's Models page with 10 registered versions, served by
gunicorn, timed over HTTP.

A scratch copy of the shipped registry gets new versions of its production model
(``tests/helpers.register_again``) until it holds 10. The first view of a new installation
lists the registry in the request (``python -m lifecycle --json list``, what every view cost
before ``app/admin/models_listing.py``); the views after it read the snapshot. The last line is one
JSON object: ``first_view_s``, ``view_p50_ms``, ``view_max_ms``, ``views``, ``versions``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench import procs
from bench.stack import env_base

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = 10
VIEWS = int(os.environ.get("RADIO_BENCH_VIEWS", "30"))


def scratch_registry(folder: Path) -> tuple[str, int]:
    """A copy of mlflow/ grown to :data:`VERSIONS` versions; (tracking URI, versions)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import register_again

    from lifecycle import model_versions as reg

    shutil.copytree(ROOT / "mlflow", folder / "mlflow", ignore=shutil.ignore_patterns("*.sh"))
    uri = f"sqlite:///{folder / 'mlflow' / 'mlflow.db'}"
    cl = reg.client(uri)
    production = reg.alias_version(cl, "radio-cxr", reg.PRODUCTION)
    assert production is not None, "the shipped registry has no production version"
    count = len(cl.search_model_versions("name='radio-cxr'"))
    while count < VERSIONS:
        register_again(folder / "mlflow", production)
        count += 1
    return uri, count


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp_name:
        tmp = Path(tmp_name)
        uri, versions = scratch_registry(tmp)
        port = procs.free_port()
        env = env_base(PORT=str(port), MLFLOW_TRACKING_URI=uri,
                       RADIO_REGISTRY_ROOT=str(tmp), RADIO_DATA_DIR=str(tmp / "data"),
                       RADIO_LIFECYCLE_LOG=str(tmp / "events.jsonl"),
                       MLFLOW_URL=f"http://127.0.0.1:{procs.free_port()}")
        env.pop("MLFLOW_REGISTRY_URI", None)
        out = subprocess.run([sys.executable, "-m", "app.accounts.users", "token", "--user",
                              "bench-admin", "--role", "admin"], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=True)
        auth = {"Authorization": f"Bearer {out.stdout.strip().splitlines()[-1]}"}
        app = procs.start([sys.executable, "-m", "gunicorn", "-c", "app/platform/gunicorn.conf.py",
                           "app.platform.wsgi:app"], env, tmp / "app.log", ROOT)
        try:
            url = f"http://127.0.0.1:{port}"
            procs.wait_until(f"{url}/health", app, ok=lambda r: r.status_code in (200, 503))
            with requests.Session() as http:
                t0 = time.perf_counter()
                first = http.get(f"{url}/admin/models", headers=auth, timeout=120)
                first_s = time.perf_counter() - t0
                first.raise_for_status()
                rows = first.text.count("data-version=")
                assert rows == versions, f"{rows} rows for {versions} versions"
                assert 'id="production-card"' in first.text
                times = []
                for _ in range(VIEWS):
                    t0 = time.perf_counter()
                    resp = http.get(f"{url}/admin/models", headers=auth, timeout=30)
                    times.append((time.perf_counter() - t0) * 1000)
                    resp.raise_for_status()
        finally:
            procs.stop(app)
    result = {"versions": versions, "first_view_s": round(first_s, 2), "views": VIEWS,
              "view_p50_ms": round(statistics.median(times), 1),
              "view_max_ms": round(max(times), 1)}
    print(f"Models page, {versions} versions: first view {first_s:.2f} s (lists the "
          f"registry), then p50 {result['view_p50_ms']} ms, max {result['view_max_ms']} ms "
          f"over {VIEWS} views")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
