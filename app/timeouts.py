"""A deadline on reading the request body: a slow or stalled client gets 408, not a thread.

gunicorn reads the body only when the app asks for it, from a blocking socket, so a client
that sends its body slowly (or less than its Content-Length) held a worker thread forever.
Under gunicorn (``environ["gunicorn.socket"]``) :class:`BodyDeadline` wraps ``wsgi.input``:
before each read the socket's timeout is set to the time left until RADIO_BODY_TIMEOUT_S
after the request started; a read that times out raises :class:`BodyTimeout`, which
``app/errors.py`` answers with 408 and ``Connection: close``. The per-read timeout of the
worker (``app/gunicorn_worker.py``) still bounds header reads and answer writes.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import RequestTimeout


class BodyTimeout(RequestTimeout):
    """The request body did not arrive within the deadline (408)."""


class _DeadlineReader:
    """File-like ``wsgi.input`` whose reads all end by ``deadline`` (monotonic)."""

    def __init__(self, raw: Any, sock: socket.socket, deadline: float, restore: float | None):
        self._raw, self._sock, self._deadline, self._restore = raw, sock, deadline, restore

    def _call(self, method: str, *args: Any) -> Any:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise BodyTimeout()
        try:
            self._sock.settimeout(left)
            return getattr(self._raw, method)(*args)
        except TimeoutError as exc:  # socket.timeout
            raise BodyTimeout() from exc
        finally:
            try:
                self._sock.settimeout(self._restore)
            except OSError:
                pass

    def read(self, size: int | None = -1) -> bytes:
        return self._call("read", size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._call("readline", size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return self._call("readlines", hint)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


class BodyDeadline:
    """WSGI middleware installing :class:`_DeadlineReader` under gunicorn."""

    def __init__(self, app: Callable, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        if isinstance(sock, socket.socket) and "wsgi.input" in environ:
            deadline = time.monotonic() + self.timeout_s
            environ["wsgi.input"] = _DeadlineReader(
                environ["wsgi.input"], sock, deadline, sock.gettimeout()
            )
        return self.app(environ, start_response)
