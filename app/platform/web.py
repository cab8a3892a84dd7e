"""The clinician's page: one upload form, everything else happens in static/app.js."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from app.accounts.auth import requires

bp = Blueprint("web", __name__)


@bp.get("/")
@requires("clinician")
def index() -> str:
    """The upload page."""
    from app import __version__

    cfg = current_app.config["RADIO"]
    return render_template("index.html", max_upload_mb=cfg.max_upload_mb, version=__version__)
