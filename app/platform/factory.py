"""The application factory: every blueprint, handler and middleware, registered eagerly.

``app.create_app`` is this function. It lives here rather than in ``app/__init__.py`` so
that importing any module of the package (``python -m app.accounts.users``, the monitoring
jobs reading the image store) does not load Flask and every page with it: the package's
``__init__`` stays Flask-free (tests/app/test_layout.py checks that in a fresh interpreter).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from app.accounts import accounts, auth
from app.admin import audit_page, models, monitoring, monitoring_runs
from app.clinical import clinical, predict, presentation, teaching
from app.datasets import dataset_versions, datasets
from app.platform import (
    errors,
    headers,
    health,
    openapi,
    request_timing,
    state,
    timeouts,
    web,
)
from app.platform.config import Config, load_config
from app.platform.request import RadioRequest
from app.store.db import web as dbweb


def create_app(config: Config | dict[str, Any] | None = None) -> Flask:
    """Build the Flask application.

    ``config`` is a :class:`Config`, or a dict of overrides applied on top of the
    environment (handy in tests), or None to read everything from the environment.
    """
    cfg = config if isinstance(config, Config) else load_config(overrides=config)
    # "app": the package's folder holds templates/ and static/.
    app = Flask("app")
    app.request_class = RadioRequest
    app.config["RADIO"] = cfg
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_upload_bytes
    # Let the 413 handler answer JSON even for oversized multipart bodies.
    app.config["MAX_FORM_MEMORY_SIZE"] = cfg.max_upload_bytes
    app.json.sort_keys = False

    logging.getLogger("radio").setLevel(cfg.log_level)
    for module in (web, predict, health, openapi):
        app.register_blueprint(module.bp)
    for module in (auth, clinical, accounts, datasets, models, monitoring, audit_page,
                   dataset_versions, monitoring_runs, teaching):
        app.register_blueprint(module.bp)
    errors.register(app)
    presentation.install(app)
    headers.register(app)
    state.install(app, cfg)
    dbweb.init_app(app)
    auth.init_app(app)
    request_timing.init_app(app)
    app.wsgi_app = timeouts.BodyDeadline(app.wsgi_app, cfg.body_timeout_s)  # type: ignore[method-assign]
    return app
