"""Radio clinician web app: upload a chest X-ray, get decision support from the model server.

The app never loads a model itself: it validates and preprocesses the upload
(``serving.preprocessing``), sends it to the MLflow model server (``serving.wire``) and
renders the answer. It must never import TensorFlow or mlflow, so it stays small and starts
in a second.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from app.config import Config, load_config

__version__ = "0.1.0"


def create_app(config: Config | dict[str, Any] | None = None) -> Flask:
    """Build the Flask application.

    ``config`` is a :class:`Config`, or a dict of overrides applied on top of the
    environment (handy in tests), or None to read everything from the environment.
    """
    # Late imports: keep import cycles away.
    from app import (
        admin,
        auth,
        clinical,
        contribute,
        errors,
        headers,
        health,
        metrics,
        model_admin,
        monitoring,
        openapi,
        predict,
        presentation,
        state,
        teaching_web,
        timeouts,
        web,
    )
    from app.db import web as dbweb
    from app.request import RadioRequest

    cfg = config if isinstance(config, Config) else load_config(overrides=config)
    app = Flask(__name__)
    app.request_class = RadioRequest
    app.config["RADIO"] = cfg
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_upload_bytes
    # Let the 413 handler answer JSON even for oversized multipart bodies.
    app.config["MAX_FORM_MEMORY_SIZE"] = cfg.max_upload_bytes
    app.json.sort_keys = False

    logging.getLogger("radio").setLevel(cfg.log_level)
    for module in (web, predict, health, openapi):
        app.register_blueprint(module.bp)
    for module in (auth, clinical, admin, contribute, model_admin, monitoring):
        app.register_blueprint(module.bp)
    app.register_blueprint(teaching_web.bp)
    errors.register(app)
    presentation.install(app)
    headers.register(app)
    state.install(app, cfg)
    dbweb.init_app(app)
    auth.init_app(app)
    metrics.init_app(app)
    app.wsgi_app = timeouts.BodyDeadline(app.wsgi_app, cfg.body_timeout_s)  # type: ignore[method-assign]
    return app
