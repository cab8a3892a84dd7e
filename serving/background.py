"""One call run in a second thread while the caller does something else: used where both
halves release the GIL (zlib, Pillow's decoders, disk writes, a socket wait), so on two
cores the second half costs no latency. Standard library only."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Background:
    """``fn()`` started in a daemon thread; calling the object waits for it and returns its
    result or raises its exception."""

    def __init__(self, fn: Callable[[], Any], name: str = "radio-background") -> None:
        self._result: list[Any] = []
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self._result.append(fn())
        except BaseException as exc:  # re-raised in the caller's thread
            self._error.append(exc)

    def wait(self) -> None:
        """Wait for the call to end, whatever its outcome."""
        self._thread.join()

    def __call__(self) -> Any:
        self._thread.join()
        if self._error:
            raise self._error[0]
        return self._result[0]
