"""Per-app runtime state, kept on the Flask app (``app.extensions["radio"]``), not in modules.

One :class:`AppState` per app object, hence per gunicorn worker process: the slots that
bound how many threads /predict and image decoding may take, the model-server circuit
breaker, the cached model-server probe of /health and the model that answered last.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from app.platform.breaker import Breaker
from app.platform.config import Config


@dataclass
class Probe:
    """The last model-server check of /health (monotonic time, ok, detail)."""

    at: float = -1e9
    ok: bool = False
    detail: str = "no answer yet (the first check is still running)"
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class AppState:
    """Mutable state of one app instance; see the module docstring."""

    predict_slots: threading.BoundedSemaphore
    decode_slots: threading.BoundedSemaphore
    breaker: Breaker
    probe: Probe = field(default_factory=Probe)
    last_model: dict[str, Any] | None = None


def install(app: Flask, cfg: Config) -> AppState:
    """Create the state of ``app`` from its config."""
    state = AppState(
        predict_slots=threading.BoundedSemaphore(cfg.predict_slots),
        decode_slots=threading.BoundedSemaphore(cfg.decode_slots),
        breaker=Breaker(cfg.breaker_failures, cfg.breaker_cooldown_s),
    )
    app.extensions["radio"] = state
    return state


def get() -> AppState:
    """The state of the app handling the current request."""
    return current_app.extensions["radio"]
