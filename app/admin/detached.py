"""A command started by an admin page, run detached from the web worker: its record, output,
errors and exit status kept in a folder of its own, which the page reads to tell running
from done (the worker keeps no child process and waits for nothing)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from app.platform.config import PROJECT_ROOT

# sh writes the exit status once the command is done, renamed into place: "rc" exists only
# whole, so a page never reads a half-written status.
_SCRIPT = ('"$@" >"$RADIO_TASK_DIR/$RADIO_TASK_OUT" 2>"$RADIO_TASK_DIR/err.txt"; '
           'echo $? >"$RADIO_TASK_DIR/rc.tmp"; mv "$RADIO_TASK_DIR/rc.tmp" "$RADIO_TASK_DIR/rc"')


def start(folder: Path, record: tuple[str, dict[str, Any]], argv: list[str],
          env: dict[str, str], out: str) -> None:
    """Create ``folder`` with the ``(file name, content)`` record, then run ``argv`` in the
    project root, in its own session, standard output to ``folder/out``, errors to
    ``err.txt``, exit status to ``rc``."""
    folder.mkdir(parents=True)
    name, content = record
    (folder / name).write_text(json.dumps(content))
    subprocess.Popen(["sh", "-c", _SCRIPT, "sh", *argv],
                     env=env | {"RADIO_TASK_DIR": str(folder), "RADIO_TASK_OUT": out},
                     cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)
