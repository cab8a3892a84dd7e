"""Radio's gunicorn worker: gthread with slow clients kept off the threads, socket timeouts,
JSON error pages and bounded malloc.

* **Slow clients**: gthread hands a connection to a thread as soon as one byte arrives, and
  the thread then reads the headers and the body from a blocking socket: 24 clients
  trickling headers a byte every 5 s, or 30 slow ``POST /login`` bodies, held every thread
  and ``/health`` took 25 s (issue 26). Here the worker's event loop reads each request
  without blocking until its headers and, when its Content-Length is at most
  :data:`PREBUFFER_BYTES` (every form, login included), its whole body have arrived; only
  then does a thread get it, and reads it from memory. A request that does not arrive
  within RADIO_HEADER_TIMEOUT_S (headers) or RADIO_BODY_TIMEOUT_S (body) is dropped by the
  loop. Larger bodies (image uploads) are read by the thread, under the body deadline of
  ``app/platform/timeouts.py``, and ``/predict`` takes at most RADIO_PREDICT_SLOTS threads.

* **Read/write timeout**: gunicorn's gthread worker reads request headers and bodies from a
  blocking socket with no timeout, so a client that stops sending held a thread forever.
  Each client socket here is a :class:`TimeoutSocket`: "blocking" means "blocking for at
  most RADIO_READ_TIMEOUT_S" for every recv and send. ``app/platform/timeouts.py`` adds the deadline
  on the whole body (408).
* **JSON errors**: the errors gunicorn answers itself, before the app runs (malformed
  request line, too many or too large headers...), are HTML in gunicorn; here they are the
  app's JSON shape, with the app's security headers (``app/platform/headers.py``).
* **Memory**: glibc gives each thread its own malloc arena and keeps freed memory in them;
  after eight large decodes a worker kept 1.2 GB. Two arenas and a fixed mmap threshold
  (large buffers are returned to the system at once) keep a worker near its working set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import logging
import os
import selectors
import socket
import time

from gunicorn import util
from gunicorn.workers import gthread

from app.platform.errors import body_timeout_message, json_error_body
from app.platform.headers import HEADERS

READ_TIMEOUT_S = float(os.environ.get("RADIO_READ_TIMEOUT_S", "10"))
HEADER_TIMEOUT_S = float(os.environ.get("RADIO_HEADER_TIMEOUT_S", "20"))
BODY_TIMEOUT_S = float(os.environ.get("RADIO_BODY_TIMEOUT_S", "30"))
# Bodies up to this size are read by the event loop before a thread is used: forms and
# logins, not image uploads (those are bounded by RADIO_PREDICT_SLOTS instead).
PREBUFFER_BYTES = 256 * 1024
# Headers larger than this go to a thread at once: gunicorn answers them 431.
MAX_HEADER_BYTES = 64 * 1024
log = logging.getLogger("radio.worker")
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # glibc mallopt() parameters


class TimeoutSocket(socket.socket):
    """A socket whose blocking mode has a timeout (see the module docstring), and deadlines.

    Each time gunicorn makes it blocking to handle a request, the request's headers must
    arrive within RADIO_HEADER_TIMEOUT_S; while the app runs, ``app/platform/timeouts.py`` sets the
    body deadline instead (``in_body``). Every ``recv`` ends by the deadline: gunicorn's
    readers loop over ``recv`` until they have what they asked for, so a per-recv timeout
    alone never ends headers or a body that trickle in a byte at a time.
    """

    read_timeout_s = READ_TIMEOUT_S
    deadline: float | None = None  # monotonic time
    in_body = False
    pending = b""  # bytes the event loop already read (RadioThreadWorker), served first

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(self.read_timeout_s)
            self.deadline = time.monotonic() + HEADER_TIMEOUT_S  # a request starts
        else:
            super().setblocking(False)
            self.deadline = None

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self.pending:
            chunk, self.pending = self.pending[:bufsize], self.pending[bufsize:]
            return chunk
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
                raise  # app/platform/timeouts.py answers 408
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
    """gthread worker with the four changes of the module docstring."""

    def init_process(self) -> None:
        self._buffering: set[gthread.TConn] = set()  # requests the event loop is reading
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
        self._buffer(conn)

    def on_client_socket_readable(self, conn: gthread.TConn, client: socket.socket) -> None:
        """A kept-alive connection's next request: read by the loop too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._buffer(conn)

    # --- requests read by the event loop (see the module docstring) ---------------------

    def _buffer(self, conn: gthread.TConn) -> None:
        conn.sock.setblocking(False)
        # A pipelined next request the thread's parser read ahead is already here.
        conn.radio_buf = bytearray(conn.sock.pending)
        conn.sock.pending = b""
        conn.radio_headers_by = time.monotonic() + HEADER_TIMEOUT_S
        conn.radio_body_by = None
        self._buffering.add(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ,
                             functools.partial(self._on_readable, conn))
        if conn.radio_buf:
            self._on_readable(conn, conn.sock, b"")

    def _on_readable(self, conn: gthread.TConn, _sock: socket.socket,
                     data: bytes | None = None) -> None:
        if data is None:
            try:
                data = socket.socket.recv(conn.sock, 65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:  # the client went away
                self._drop(conn)
                return
        conn.radio_buf += data
        if _complete(conn):
            self._buffering.discard(conn)
            self.poller.unregister(conn.sock)
            conn.sock.pending = bytes(conn.radio_buf)
            conn.radio_buf = bytearray()
            conn.data_ready = True
            self.enqueue_req(conn)

    def _drop(self, conn: gthread.TConn, answer: bytes = b"") -> None:
        self._buffering.discard(conn)
        if answer:
            try:
                util.write_nonblock(conn.sock, answer)
            except OSError:
                pass
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """gthread's sweep, and the requests that did not arrive in time."""
        super().murder_pending()
        now = time.monotonic()
        for conn in list(self._buffering):
            late = conn.radio_headers_by if conn.radio_body_by is None else conn.radio_body_by
            if now > late:
                log.warning("closed a connection whose request did not arrive in time")
                # Headers late: dropped (as the socket timeouts do); a body late: the 408
                # the app would have answered (app/platform/timeouts.py).
                self._drop(conn, b"" if conn.radio_body_by is None else _late_body())


def _late_body() -> bytes:
    body = json_error_body(408, body_timeout_message(BODY_TIMEOUT_S))
    security = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())
    return (f"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Cache-Control: no-store\r\n{security}\r\n").encode("latin-1") + body


def _complete(conn: gthread.TConn) -> bool:
    """Whether a thread may have the request: headers (and a small body) all here, or too
    large to wait for in memory."""
    buf = conn.radio_buf
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return len(buf) > MAX_HEADER_BYTES
    head = bytes(buf[:end]).lower()
    if b"\ntransfer-encoding:" in head:
        return True  # chunked: the thread reads it under the body deadline
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return True  # gunicorn answers 400
    if length > PREBUFFER_BYTES:
        return True
    if conn.radio_body_by is None:
        conn.radio_body_by = time.monotonic() + BODY_TIMEOUT_S
    return len(buf) - (end + 4) >= length
