"""Circuit breaker in front of the model server: a hung server costs one timeout, not all.

After ``failures`` calls in a row that could not reach the model server or got no answer in
time (503/504), the breaker opens: for ``cooldown_s`` every /predict fails at once with 503
instead of holding a worker thread for MLFLOW_TIMEOUT_S. After the cooldown one call is let
through (half-open); its success closes the breaker, its failure opens it again.

A worker that got no /predict since the outage would otherwise stay half-open: its next
burst of requests would see one probe go through and the others refused while the server is
back. So a successful ``/ping`` of the model server (``/health``) after the cooldown closes
it too (:meth:`Breaker.recovered`); during the cooldown it does not (a server can answer its
ping and still hang on predictions).
"""

from __future__ import annotations

import threading
import time


class Breaker:
    """Thread-safe consecutive-failure breaker (one per app, i.e. per worker process)."""

    def __init__(self, failures: int, cooldown_s: float) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self._in_a_row = 0
        self._open_until = 0.0
        self._probe_until = 0.0  # a probe that never reports (its request died) expires

    def allow(self) -> float | None:
        """None when a call may go ahead; else the seconds left before the next try."""
        with self._lock:
            now = time.monotonic()
            if self._in_a_row < self.failures:
                return None
            if now < self._open_until or now < self._probe_until:
                return max(self._open_until - now, self._probe_until - now, 1.0)
            self._probe_until = now + self.cooldown_s  # half-open: one call tries the server
            return None

    def record(self, ok: bool) -> None:
        """The outcome of an allowed call."""
        with self._lock:
            self._probe_until = 0.0
            if ok:
                self._in_a_row = 0
                return
            self._in_a_row += 1
            if self._in_a_row >= self.failures:
                self._open_until = time.monotonic() + self.cooldown_s

    def recovered(self) -> None:
        """The model server answered its ping: closed, unless still in the cooldown."""
        with self._lock:
            if time.monotonic() >= self._open_until:
                self._in_a_row = 0
                self._probe_until = 0.0

    @property
    def is_open(self) -> bool:
        """True while calls are refused without trying."""
        with self._lock:
            return self._in_a_row >= self.failures and time.monotonic() < self._open_until
