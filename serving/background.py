"""One call run in a second thread while the caller does something else: used where both
halves release the GIL (zlib, Pillow's decoders, disk writes, a socket wait), so on two
cores the second half costs no latency. Standard library only.

The threads are kept and reused (one pool per process): starting a thread waits until it
runs, ~1 ms per call under load on two cores (py-spy of a worker under ``make bench``),
twice per answer. A process forked from one that used the pool gets a pool of its own."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

# More than the calls that can run at once in one process (decode slots + predict slots of
# a gunicorn worker); beyond it calls wait their turn, they never fail.
MAX_THREADS = 32

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="radio-background")
        return _pool


def _forget_pool() -> None:
    # The parent's threads do not exist in a forked child; its pool would queue forever.
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


class Background:
    """``fn()`` started in a pool thread; calling the object waits for it and returns its
    result or raises its exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._future: Future[Any] = _executor().submit(fn)

    def wait(self) -> None:
        """Wait for the call to end, whatever its outcome."""
        self._future.exception()

    def __call__(self) -> Any:
        return self._future.result()
