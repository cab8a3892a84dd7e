"""The optional retraining trigger: off unless RADIO_RETRAIN_ON_DRIFT=true.

When a drift report finds drift and the trigger is on, RADIO_RETRAIN_COMMAND (for example
the lifecycle's training command on a chosen reference dataset) is started, detached, with
the report's kind and summary in RADIO_DRIFT_KIND / RADIO_DRIFT_SUMMARY. It only starts a
training: the new version goes through the promotion gate like any other and nothing here
moves an alias.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import Any


def enabled() -> bool:
    """True only when RADIO_RETRAIN_ON_DRIFT is an explicit yes."""
    return os.environ.get("RADIO_RETRAIN_ON_DRIFT", "").lower() in ("1", "true", "yes", "on")


def maybe_retrain(report: dict[str, Any]) -> str:
    """What the trigger did: "off", "no drift", or "started: <command>"."""
    if not enabled():
        return "off"
    if not report.get("drift"):
        return "no drift"
    command = os.environ.get("RADIO_RETRAIN_COMMAND", "").strip()
    if not command:
        raise RuntimeError("RADIO_RETRAIN_ON_DRIFT is on but RADIO_RETRAIN_COMMAND is empty")
    env = {**os.environ, "RADIO_DRIFT_KIND": report["kind"],
           "RADIO_DRIFT_SUMMARY": report["summary"]}
    subprocess.Popen(shlex.split(command), env=env, start_new_session=True,  # noqa: S603
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return f"started: {command}"
