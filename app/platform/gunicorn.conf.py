"""gunicorn settings for the Radio web app, from the environment.

PORT [8080], HOST [127.0.0.1], RADIO_WORKERS [2], RADIO_THREADS [12], MLFLOW_TIMEOUT_S [10],
RADIO_READ_TIMEOUT_S [10], RADIO_HEADER_TIMEOUT_S [20] (app/platform/gunicorn_worker.py),
RADIO_METRICS_HOST [127.0.0.1], RADIO_METRICS_PORT [9101] (Prometheus; 0 = off).
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("RADIO_WORKERS", "2"))
# Threads let one worker keep serving the page and /health while requests wait on the
# model server or on slow clients; /predict may take at most RADIO_PREDICT_SLOTS [10] of
# them, the rest are kept for the page and /health.
threads = int(os.environ.get("RADIO_THREADS", "12"))
# gthread plus socket timeouts, JSON error pages and bounded malloc arenas.
worker_class = "app.platform.gunicorn_worker.RadioThreadWorker"
# A request may wait MLFLOW_TIMEOUT_S for the model (plus one quick retry and the upload):
# gunicorn must not kill the worker first.
timeout = int(2 * float(os.environ.get("MLFLOW_TIMEOUT_S", "10")) + 30)
graceful_timeout = 20
keepalive = 5
# Access lines hold method, path and status; never query strings with data, never bodies.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
# Headers are small; keep gunicorn's defaults for request-line and header limits.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn 26 opens a control socket at one default path per user: several gunicorns on a
# host (tests, make run, the service) would share it. Radio does not use gunicornc.
control_socket_disable = True

# --- Prometheus metrics (app/platform/metrics.py) -------------------------------------------------
# Workers write their metrics to files in PROMETHEUS_MULTIPROC_DIR (set here, before any
# worker imports prometheus_client); the master serves their sum on RADIO_METRICS_HOST
# [127.0.0.1] : RADIO_METRICS_PORT [9101] (0 = off), a port nginx never proxies.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="radio-metrics-")


def on_starting(server):
    """Counters start at zero with each gunicorn: drop files of a previous run. Then
    migrate the database once, before any worker exists."""
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.unlink(os.path.join(folder, name))
    _migrate(server)


def _migrate(server):
    """Bring the database to the newest revision in a child process (Alembic stays out of
    the master and so out of every forked worker) and tell the workers it is done. On
    failure the workers migrate on first use, as without gunicorn, and the error shows in
    their log and in /health; the app starts either way."""
    import subprocess
    import sys

    from app.platform.config import load_config
    from app.store.db import MIGRATED_ENV, migrated_mark

    url = load_config().db_url
    try:
        done = subprocess.run([sys.executable, "-m", "app.accounts.users", "migrate"], timeout=600,
                              capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        server.log.error("database migration took over 600 s; workers will retry")
        return
    if done.returncode == 0:
        os.environ[MIGRATED_ENV] = migrated_mark(url)
    else:
        server.log.error("database migration failed; workers will retry: %s",
                         done.stderr.strip()[-2000:])


def when_ready(server):
    """Serve /metrics from the master once the app's socket listens."""
    port = int(os.environ.get("RADIO_METRICS_PORT", "9101"))
    if port:
        from app.platform.config import load_config
        from app.platform.metrics import serve

        host = os.environ.get("RADIO_METRICS_HOST", "127.0.0.1")
        try:
            serve(port, host, load_config().data_dir)
        except OSError as exc:  # the app must serve even when its metrics cannot
            server.log.error("metrics NOT served: %s:%d: %s", host, port, exc)
        else:
            server.log.info("metrics on %s:%d", host, port)


def child_exit(server, worker):
    """Forget a dead worker's live gauges (prometheus_client multiprocess mode)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
