"""Radio's gunicorn worker: gthread with socket timeouts, JSON error pages and bounded malloc.

* **Read/write timeout**: gunicorn's gthread worker reads request headers and bodies from a
  blocking socket with no timeout, so a client that stops sending held a thread forever.
  Each client socket here is a :class:`TimeoutSocket`: "blocking" means "blocking for at
  most RADIO_READ_TIMEOUT_S" for every recv and send. ``app/timeouts.py`` adds the deadline
  on the whole body (408).
* **JSON errors**: the errors gunicorn answers itself, before the app runs (malformed
  request line, too many or too large headers...), are HTML in gunicorn; here they are the
  app's JSON shape, with the app's security headers (``app/headers.py``).
* **Memory**: glibc gives each thread its own malloc arena and keeps freed memory in them;
  after eight large decodes a worker kept 1.2 GB. Two arenas and a fixed mmap threshold
  (large buffers are returned to the system at once) keep a worker near its working set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import socket
import time

from gunicorn import util
from gunicorn.workers import gthread

from app.errors import json_error_body
from app.headers import HEADERS

READ_TIMEOUT_S = float(os.environ.get("RADIO_READ_TIMEOUT_S", "10"))
HEADER_TIMEOUT_S = float(os.environ.get("RADIO_HEADER_TIMEOUT_S", "20"))
log = logging.getLogger("radio.worker")
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # glibc mallopt() parameters


class TimeoutSocket(socket.socket):
    """A socket whose blocking mode has a timeout (see the module docstring), and deadlines.

    Each time gunicorn makes it blocking to handle a request, the request's headers must
    arrive within RADIO_HEADER_TIMEOUT_S; while the app runs, ``app/timeouts.py`` sets the
    body deadline instead (``in_body``). Every ``recv`` ends by the deadline: gunicorn's
    readers loop over ``recv`` until they have what they asked for, so a per-recv timeout
    alone never ends headers or a body that trickle in a byte at a time.
    """

    read_timeout_s = READ_TIMEOUT_S
    deadline: float | None = None  # monotonic time
    in_body = False

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(self.read_timeout_s)
            self.deadline = time.monotonic() + HEADER_TIMEOUT_S  # a request starts
        else:
            super().setblocking(False)
            self.deadline = None

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        deadline = self.deadline
        try:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the request deadline has passed")
                self.settimeout(min(self.read_timeout_s, left))
            return super().recv(bufsize, flags)
        except TimeoutError:
            if self.in_body:
                raise  # app/timeouts.py answers 408
            # Stalled or trickling headers: drop the client with one line; ENOTCONN is what
            # gunicorn closes quietly, where a TimeoutError logs a traceback.
            log.warning("closed a connection whose request did not arrive in time")
            raise OSError(errno.ENOTCONN, "client read timeout") from None
        finally:
            if deadline is not None:
                self.settimeout(self.read_timeout_s)


def _with_timeouts(sock: socket.socket) -> socket.socket:
    wrapped = TimeoutSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    wrapped.setblocking(True)
    return wrapped


def _write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error`` with a JSON body (``mesg`` may echo the attacker's
    request line, so the body carries Radio's sentence for the status instead)."""
    body = json_error_body(status_int)
    security = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Cache-Control: no-store\r\n{security}\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def tune_malloc() -> bool:
    """Two malloc arenas and a 1 MB mmap threshold in this process (glibc only)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_ARENA_MAX, 2)) and bool(
            libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20))
    except (OSError, AttributeError):
        return False


class RadioThreadWorker(gthread.ThreadWorker):
    """gthread worker with the three changes of the module docstring."""

    def init_process(self) -> None:
        tune_malloc()
        util.write_error = _write_json_error  # used by handle_error for gunicorn's own errors
        super().init_process()

    def accept(self, listener: socket.socket) -> None:
        """gthread's accept, with the client socket given timeouts."""
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = gthread.TConn(self.cfg, _with_timeouts(client_sock), client_addr,
                             listener.getsockname())
        self.enqueue_req(conn)
