"""The web app's boundary to the model lifecycle: its command line, run as a child process.

The app must not import MLflow (nor ``training``, nor TensorFlow): it stays small and
starts in a second, and a gunicorn worker never holds a model registry client. So the
admin page runs ``python -m lifecycle --json ...`` (``RADIO_LIFECYCLE_CMD``), the very
commands an operator types, with the registry settings of the app's environment
(``MLFLOW_TRACKING_URI``, ``RADIO_GATE_DATA``...). One implementation of the gate and of
the aliases serves the CLI, the scheduled jobs and the page.

Listing is quick and answered in the request. Deploying (the gate evaluates two models)
and training take minutes: they are *tasks*, started detached under
``<data dir>/lifecycle/tasks/<id>/`` (``task.json`` what and who, ``out.json`` the result,
``err.txt``, ``rc`` the exit status once done, ``progress.json`` written by a training),
and the page polls them. A task outlives the request and the worker that started it.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from app.admin import detached
from app.platform.config import PROJECT_ROOT, Config

ACTIONS = ("prepare", "deploy", "force", "rollback", "train")


class LifecycleUnavailable(RuntimeError):
    """The lifecycle command failed; the message says why, for the admin."""


def command(cfg: Config) -> list[str]:
    """The lifecycle command line (``RADIO_LIFECYCLE_CMD`` or this interpreter's module)."""
    return shlex.split(cfg.lifecycle_cmd) if cfg.lifecycle_cmd else [
        sys.executable, "-m", "lifecycle"]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ) | {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT),
                                                    env.get("PYTHONPATH", "")) if p)
    return env | (extra or {})


def list_versions(cfg: Config) -> list[dict[str, Any]]:
    """Every version with aliases, metrics and lineage (``lifecycle list``)."""
    try:
        proc = subprocess.run([*command(cfg), "--json", "list"], capture_output=True, text=True,
                              timeout=cfg.lifecycle_timeout_s, env=_env(), cwd=PROJECT_ROOT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LifecycleUnavailable(f"the lifecycle command did not answer: {exc}") from exc
    if proc.returncode != 0:
        if "No module named 'mlflow'" in proc.stderr:
            raise LifecycleUnavailable(
                "the lifecycle needs MLflow on this host (pip install '.[serve]') and "
                "MLFLOW_TRACKING_URI naming the registry, or RADIO_LIFECYCLE_CMD")
        lines = (proc.stderr.strip() or "no message").splitlines()
        raise LifecycleUnavailable(lines[-1])
    return json.loads(proc.stdout)


def tasks_dir(cfg: Config) -> Path:
    """Where tasks live."""
    return Path(cfg.data_dir) / "lifecycle" / "tasks"


def arguments(action: str, version: str = "", reason: str = "", mode: str = "",
              reference: str = "", production: str = "", epochs: str = "",
              folds: str = "") -> list[str]:
    """The lifecycle CLI arguments of a page action (validated here: the page is input)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if action in ("prepare", "force") or (action == "deploy" and version):
        if not version.isdigit():
            raise ValueError("choose a version")
    if action == "prepare":
        return ["prepare", version]
    if action == "deploy":
        return ["deploy", *([version] if version else [])]
    if action == "force":
        if not reason.strip():
            raise ValueError("a forced deploy needs a reason")
        return ["force", version, "--reason", reason.strip()]
    if action == "rollback":
        return ["rollback", *(["--reason", reason.strip()] if reason.strip() else [])]
    if mode not in ("scratch", "scratch-plus-production", "finetune"):
        raise ValueError("choose a training mode")
    if mode != "scratch" and not production:
        raise ValueError("this mode needs a production dataset version folder")
    for value, name in ((epochs, "epochs"), (folds, "folds")):
        if value and not (value.isdigit() and 0 < int(value) <= 500):
            raise ValueError(f"{name} must be a whole number from 1 to 500")
    if folds and int(folds) < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    return ["train", "--mode", mode, *(["--reference", reference] if reference else []),
            *(["--production", production] if production else []),
            *(["--epochs", epochs] if epochs else []), *(["--folds", folds] if folds else [])]


def start(cfg: Config, args: list[str], by: str) -> str:
    """Start ``lifecycle --json --by BY ARGS`` detached; its task id."""
    task_id = secrets.token_hex(8)
    folder = tasks_dir(cfg) / task_id
    detached.start(folder, ("task.json", {"id": task_id, "args": args, "by": by,
                                          "started": time.time()}),
                   [*command(cfg), "--json", "--by", by, *args],
                   _env({"RADIO_LIFECYCLE_PROGRESS": str(folder / "progress.json")}),
                   "out.json")
    return task_id


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def task(cfg: Config, task_id: str) -> dict[str, Any] | None:
    """A task's state: ``running`` or ``done`` / ``refused`` / ``failed``, progress, result."""
    if not task_id.isalnum():
        return None
    folder = tasks_dir(cfg) / task_id
    info = _read_json(folder / "task.json")
    if info is None:
        return None
    rc_text = (folder / "rc").read_text().strip() if (folder / "rc").is_file() else ""
    state = "running"
    if rc_text:
        state = {"0": "done", "1": "refused"}.get(rc_text, "failed")
    err = (folder / "err.txt").read_text() if (folder / "err.txt").is_file() else ""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    return {**info, "state": state, "progress": _read_json(folder / "progress.json"),
            "result": _read_json(folder / "out.json") if rc_text else None,
            "error": (errors[-1] if errors else err.strip()[-300:]) if state == "failed" else ""}


def recent_tasks(cfg: Config, limit: int = 10) -> list[dict[str, Any]]:
    """The latest tasks, newest first."""
    folder = tasks_dir(cfg)
    if not folder.is_dir():
        return []
    found = [t for t in (task(cfg, p.name) for p in folder.iterdir()) if t]
    return sorted(found, key=lambda t: t["started"], reverse=True)[:limit]
