"""WSGI entry point: ``gunicorn -c app/platform/gunicorn.conf.py app.platform.wsgi:app``.

Each worker process that imports it also starts the storage retention thread
(``app/store/retention.py``): clean at start, then every RADIO_CLEANUP_INTERVAL_S.
"""

from __future__ import annotations

import logging

from app import create_app
from app.store import retention

# Under gunicorn, app log lines go to gunicorn's error log (stderr) with its format.
_gunicorn_log = logging.getLogger("gunicorn.error")
if _gunicorn_log.handlers:
    logging.getLogger("radio").handlers = _gunicorn_log.handlers
else:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

app = create_app()
retention.start(app.config["RADIO"])
