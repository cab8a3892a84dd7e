"""WSGI entry point: ``gunicorn -c app/gunicorn.conf.py app.wsgi:app``."""

from __future__ import annotations

import logging

from app import create_app

# Under gunicorn, app log lines go to gunicorn's error log (stderr) with its format.
_gunicorn_log = logging.getLogger("gunicorn.error")
if _gunicorn_log.handlers:
    logging.getLogger("radio").handlers = _gunicorn_log.handlers
else:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

app = create_app()
