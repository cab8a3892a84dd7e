"""A deadline on reading the request body: a slow or stalled client gets 408, not a thread.

gunicorn reads the body only when the app asks for it, from a blocking socket, so a client
that sends its body slowly (or less than its Content-Length) held a worker thread forever.
Under Radio's gunicorn worker (``app/platform/gunicorn_worker.py``) :class:`BodyDeadline` sets the
socket's ``deadline`` to RADIO_BODY_TIMEOUT_S after the request reached the app, for as
long as the app runs; a read past it raises TimeoutError, turned here into
:class:`BodyTimeout`, which ``app/platform/errors.py`` answers with 408 and ``Connection: close``.
The worker's per-read timeout still bounds header reads and answer writes. Under another
server (Flask's test client, a plain gthread worker) nothing changes.

gunicorn drops the app's ``Connection`` header and would keep the connection, then drain
the unread rest of the body before the next request, from the same slow client. So when the
app answers ``Connection: close`` (408, 413, a busy 503) the middleware tells gunicorn's
response to close.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import RequestTimeout


class BodyTimeout(RequestTimeout):
    """The request body did not arrive within the deadline (408)."""


class _DeadlineReader:
    """``wsgi.input`` whose socket timeouts become :class:`BodyTimeout`."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._raw, method)(*args)
        except TimeoutError as exc:  # socket.timeout, or the deadline itself
            raise BodyTimeout() from exc

    def read(self, size: int | None = -1) -> bytes:
        return self._call("read", size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._call("readline", size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return self._call("readlines", hint)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


class BodyDeadline:
    """WSGI middleware: the body deadline for sockets that support one."""

    def __init__(self, app: Callable, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        if not hasattr(sock, "in_body") or "wsgi.input" not in environ:
            return self.app(environ, start_response)
        sock.deadline, sock.in_body = time.monotonic() + self.timeout_s, True
        environ["wsgi.input"] = _DeadlineReader(environ["wsgi.input"])

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if any(k.lower() == "connection" and v.lower() == "close" for k, v in headers):
                response = getattr(start_response, "__self__", None)  # gunicorn's Response
                if hasattr(response, "force_close"):
                    response.force_close()
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            # The next request on a kept-alive connection gets its own header deadline.
            sock.deadline, sock.in_body = None, False
