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

from app.platform.config import Config, load_config

__version__ = "0.1.0"


def create_app(config: Config | dict[str, Any] | None = None) -> Flask:
    """Build the Flask application.

    ``config`` is a :class:`Config`, or a dict of overrides applied on top of the
    environment (handy in tests), or None to read everything from the environment.
    """
    # Late imports: keep import cycles away.
    from app.accounts import accounts as admin
    from app.accounts import auth
    from app.admin import models as model_admin
    from app.admin import monitoring
    from app.clinical import clinical, predict, presentation
    from app.datasets import datasets as contribute
    from app.platform import errors, headers, health, metrics, openapi, state, timeouts, web
    from app.platform.request import RadioRequest
    from app.store.db import web as dbweb

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
    errors.register(app)
    presentation.install(app)
    headers.register(app)
    state.install(app, cfg)
    dbweb.init_app(app)
    auth.init_app(app)
    metrics.init_app(app)
    app.wsgi_app = timeouts.BodyDeadline(app.wsgi_app, cfg.body_timeout_s)  # type: ignore[method-assign]
    return app
