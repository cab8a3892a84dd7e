"""The lifecycle's append-only event log: one JSON line per action on the registry.

Registry tags say the latest state of a version; this log keeps every step (prepared,
refused with reasons, deployed, forced with who and why, rolled back), in order, even
when a tag is later overwritten. Lines are flushed and fsynced before the action returns.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def record(log: Path, action: str, **detail: Any) -> dict[str, Any]:
    """Append one event; returns it."""
    event = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "action": action, **detail}
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, (json.dumps(event, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return event


def read(log: Path, last: int | None = None) -> list[dict[str, Any]]:
    """The events, oldest first (the ``last`` ones if given); none when the log is absent."""
    log = Path(log)
    if not log.is_file():
        return []
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return events[-last:] if last else events
