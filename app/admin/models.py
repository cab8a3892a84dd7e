"""The models page (admins): versions with metrics and lineage, prepare, deploy through the
gate, force with a reason, roll back, launch a retraining, and follow those tasks.

Everything is done by the lifecycle command line (:mod:`app.admin.lifecycle_cli`, no MLflow in the
app); each action a person starts is written to the audit log with who and why, a forced
deploy with its reason.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from app.accounts import audit
from app.accounts.auth import client_ip, current_user, requires
from app.admin import lifecycle_cli, models_listing
from app.store.db import web as dbweb

bp = Blueprint("models", __name__)

MODES = (("scratch", "from scratch on a reference dataset version"),
         ("scratch-plus-production", "from scratch on reference + production data"),
         ("finetune", "fine-tune the production model on production data"))


def _page(message: str = "", status: int = 200, task_id: str = "") -> ResponseReturnValue:
    cfg = current_app.config["RADIO"]
    listing = models_listing.for_page(cfg)  # a snapshot: no registry call in the view
    return render_template("models.html", versions=listing.versions, error=listing.error,
                           listing=listing, message=message,
                           tasks=lifecycle_cli.recent_tasks(cfg), modes=MODES,
                           task_id=task_id, failed=status >= 400), status


@bp.get("/admin/models")
@requires("admin")
def page() -> ResponseReturnValue:
    """Versions, lineage and figures; recent lifecycle tasks."""
    return _page()


@bp.post("/admin/models")
@requires("admin")
def action() -> ResponseReturnValue:
    """Start one lifecycle action as a task (audited)."""
    me = current_user()
    assert me is not None
    form = request.form
    name = form.get("action", "")
    try:
        args = lifecycle_cli.arguments(name, form.get("version", "").strip(),
                                   form.get("reason", ""), form.get("mode", ""),
                                   form.get("reference", "").strip(),
                                   form.get("production", "").strip(),
                                   form.get("epochs", "").strip(), form.get("folds", "").strip())
    except ValueError as exc:
        return _page(message=str(exc), status=400)
    cfg = current_app.config["RADIO"]
    unknown = models_listing.unknown_version(cfg, args)
    if unknown:
        return _page(message=unknown, status=400)
    task_id = lifecycle_cli.start(cfg, args, by=me.username)
    session = dbweb.session()
    detail = {"task": task_id, "args": args}
    if name == "force":
        detail["reason"] = form.get("reason", "").strip()
    audit.log(session, f"model_{name}", user_id=me.id, target=form.get("version", ""),
              ip=client_ip(), detail=detail)
    session.commit()
    return _page(message=f"Started: {' '.join(args)}", status=202, task_id=task_id)


@bp.get("/admin/models/tasks/<task_id>")
@requires("admin")
def task_status(task_id: str) -> ResponseReturnValue:
    """A task's state, progress (epochs, folds) and result, as JSON for the page."""
    found = lifecycle_cli.task(current_app.config["RADIO"], task_id)
    if found is None:
        abort(404)
    return jsonify(found)


@bp.get("/admin/models/listing")
@requires("admin")
def listing_state() -> ResponseReturnValue:
    """When the registry was last read and whether it is being read again (for the page)."""
    found = models_listing.read(current_app.config["RADIO"])
    return jsonify({"listed_at": found.listed_at if found else None,
                    "refreshing": bool(found and found.refreshing)})
