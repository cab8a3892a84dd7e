"""The models page's list of registered versions, kept as a snapshot so that no page view
waits on the registry.

Listing the registry takes seconds (``python -m lifecycle --json list``: a child process
that imports MLflow, which the app never does, and reads every version with its metrics in
one search). A view reads ``<data dir>/lifecycle/listing.json`` instead (milliseconds) and,
when that snapshot is older than :data:`MAX_AGE_S` or a lifecycle task has finished since it
was read, starts one detached refresh (``python -m app.admin.models_listing``) for the next view.
Only the very first view of a new installation lists in the request. The page says when the
registry was read. A refresh that fails keeps the last good listing and says why.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.admin import lifecycle_cli as lifecycle
from app.platform.config import PROJECT_ROOT, Config, load_config

MAX_AGE_S = 60.0  # a listing older than this is read again in the background
LISTING, RUNNING = "listing.json", "listing.running"


@dataclass
class Listing:
    """What the page shows: the versions as last read, when, and the last failure."""

    versions: list[dict[str, Any]] = field(default_factory=list)
    listed_at: float | None = None  # when the listing shown began (the registry's state then)
    error: str = ""  # why the last refresh failed ("" if it did not)
    refreshing: bool = False

    def version(self, number: str) -> dict[str, Any] | None:
        """The listed version ``number``, or None."""
        return next((v for v in self.versions if v["version"] == number), None)

    @property
    def production(self) -> dict[str, Any] | None:
        """The version the ``production`` alias names, if any."""
        return next((v for v in self.versions if "production" in v["aliases"]), None)


def folder(cfg: Config) -> Path:
    """``<data dir>/lifecycle``, beside the tasks."""
    return lifecycle.tasks_dir(cfg).parent


def read(cfg: Config) -> Listing | None:
    """The snapshot, or None when the registry was never listed here."""
    try:
        doc = json.loads((folder(cfg) / LISTING).read_text())
    except (OSError, ValueError):
        return None
    return Listing(doc.get("versions") or [], doc.get("listed_at"), doc.get("error", ""),
                   _running(cfg))


def refresh(cfg: Config) -> Listing:
    """List the registry now (blocking) and keep the result; a failure keeps the last good
    versions and records why."""
    started = time.time()
    previous = read(cfg) or Listing()
    try:
        doc = {"versions": lifecycle.list_versions(cfg), "listed_at": started, "error": ""}
    except lifecycle.LifecycleUnavailable as exc:
        doc = {"versions": previous.versions, "listed_at": previous.listed_at,
               "error": str(exc)}
    target = folder(cfg) / LISTING
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{LISTING}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, target)  # a reader sees the old listing or the new one, never half
    return Listing(doc["versions"], doc["listed_at"], doc["error"], False)


def _running(cfg: Config) -> bool:
    marker = folder(cfg) / RUNNING
    try:
        age = time.time() - marker.stat().st_mtime
    except OSError:
        return False
    if age > cfg.lifecycle_timeout_s + 30:  # a refresh that died without cleaning up
        marker.unlink(missing_ok=True)
        return False
    return True


def refresh_in_background(cfg: Config) -> bool:
    """Start one detached refresh unless one is running (any worker); True if started."""
    marker = folder(cfg) / RUNNING
    marker.parent.mkdir(parents=True, exist_ok=True)
    _running(cfg)  # clears a stale marker
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT),
                                                    env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "app.admin.models_listing", "--data-dir", str(cfg.data_dir),
           "--timeout", str(cfg.lifecycle_timeout_s), "--lifecycle-cmd", cfg.lifecycle_cmd]
    try:
        subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    except OSError:
        marker.unlink(missing_ok=True)
        return False
    return True


def _finished_since(cfg: Config, moment: float) -> bool:
    """Whether a lifecycle task ended after ``moment`` (it may have moved an alias)."""
    tasks = lifecycle.tasks_dir(cfg)
    if not tasks.is_dir():
        return False
    for task in tasks.iterdir():
        try:
            if (task / "rc").stat().st_mtime >= moment:
                return True
        except OSError:
            continue
    return False


def for_page(cfg: Config) -> Listing:
    """The listing a view shows: the snapshot (refreshed in the background when stale), or,
    the first time ever, one read in the request."""
    found = read(cfg)
    if found is None:
        return refresh(cfg)
    listed = found.listed_at or 0.0
    if not found.refreshing and (time.time() - listed > MAX_AGE_S
                                 or _finished_since(cfg, listed)):
        found.refreshing = refresh_in_background(cfg)
    return found


def unknown_version(cfg: Config, args: list[str]) -> str:
    """Why an action on a version cannot start (the version is not in the registry, or is
    already in production), in words for the admin; "" when it can, or when the registry
    was never listed here (the lifecycle then says it in the task)."""
    if args[0] not in ("prepare", "deploy", "force") or len(args) < 2:
        return ""
    found = read(cfg)
    if found is None:
        return ""
    version = found.version(args[1])
    if version is None:
        refresh_in_background(cfg)  # it may have been registered since the last reading
        listed = ", ".join(v["version"] for v in found.versions) or "none"
        return (f"Version {args[1]} is not in the registry (versions listed: {listed}); "
                "nothing was started. If it was registered just now, reload this page in a "
                "minute.")
    if "production" in version["aliases"]:
        return f"Version {args[1]} is already in production; nothing was started."
    return ""


def main(argv: list[str] | None = None) -> int:
    """The background refresh: ``python -m app.admin.models_listing --data-dir D``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--lifecycle-cmd", default="")
    args = p.parse_args(argv)
    cfg = load_config(overrides={"data_dir": Path(args.data_dir),
                                 "lifecycle_timeout_s": args.timeout,
                                 "lifecycle_cmd": args.lifecycle_cmd})
    try:
        refresh(cfg)
    finally:
        (folder(cfg) / RUNNING).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
