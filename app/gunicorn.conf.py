"""gunicorn settings for the Radio web app, from the environment.

PORT [8080], HOST [127.0.0.1], RADIO_WORKERS [2], RADIO_THREADS [12], MLFLOW_TIMEOUT_S [10],
RADIO_READ_TIMEOUT_S [10], RADIO_HEADER_TIMEOUT_S [20] (app/gunicorn_worker.py).
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("RADIO_WORKERS", "2"))
# Threads let one worker keep serving the page and /health while requests wait on the
# model server or on slow clients; /predict may take at most RADIO_PREDICT_SLOTS [10] of
# them, the rest are kept for the page and /health.
threads = int(os.environ.get("RADIO_THREADS", "12"))
# gthread plus socket timeouts, JSON error pages and bounded malloc arenas.
worker_class = "app.gunicorn_worker.RadioThreadWorker"
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
