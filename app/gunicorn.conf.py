"""gunicorn settings for the Radio web app, from the environment.

PORT [8080], HOST [127.0.0.1], RADIO_WORKERS [2], RADIO_THREADS [4], MLFLOW_TIMEOUT_S [10].
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("RADIO_WORKERS", "2"))
# Threads let one worker keep serving the page and /health while another request waits
# on the model server.
threads = int(os.environ.get("RADIO_THREADS", "4"))
worker_class = "gthread"
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
