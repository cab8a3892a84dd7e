"""Errors: a sentence, never a stack trace; JSON for API clients, a page for browsers.

The one place that turns domain errors (``app.platform.failures``, the model client's
``ModelServerError``) into HTTP statuses and sentences: :func:`describe`.

API clients (the API paths, or an Accept that does not prefer HTML, as ``fetch`` sends)
get JSON ``{"error": ..., "id": ...}``; a browser opening a page gets the same sentence
on an HTML page with the site's navigation. The errors gunicorn answers itself before the
app runs (bad request line, headers too large) are JSON (``app/platform/gunicorn_worker.py``).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, RequestTimeout

from app.platform.failures import (
    Busy,
    DomainError,
    Malformed,
    ModelServerError,
    NotAccepted,
    NotAllowed,
    StorageFull,
    UnsupportedFormat,
)

log = logging.getLogger("radio.errors")

# Reading at most this many extra bytes of a rejected oversized body lets the client
# receive the 413 instead of a connection reset; bigger bodies are cut off.
_DRAIN_LIMIT = 64 * 1024 * 1024


# Sentences for the statuses Werkzeug raises; others use its own short description.
MESSAGES = {
    400: "The request is malformed.",
    403: "You may not open this page: it belongs to another user, or needs another role.",
    404: "There is no such page or API endpoint.",
    408: "The request took too long to arrive.",
    411: "The request needs a Content-Length.",
    413: "The request is too large.",
    414: "The address is too long.",
    431: "The request headers are too large.",
    500: "Internal error in the Radio web app; please try again.",
    501: "The request uses a feature Radio does not support.",
}


class APIError(Exception):
    """An error answered as ``{"error": message, "id": ...}`` with an HTTP status."""

    def __init__(self, status: int, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.request_id = request_id


# The status of each domain error; a model-server error's depends on its kind.
STATUSES: dict[type[DomainError], int] = {
    Malformed: 400, NotAllowed: 403, UnsupportedFormat: 415, NotAccepted: 422, Busy: 503,
    StorageFull: 507}
MODEL_SERVER_STATUSES = {"unreachable": 503, "breaker_open": 503, "timeout": 504}


def _storage_message(exc: StorageFull) -> str:
    kept = ("the image stays on the server until the next clean-up removes it"
            if exc.image_left else "nothing was kept")
    what = (
        "Radio analysed the image but cannot store the result (the server's storage is "
        f"full or not writable), so the answer is not shown and {kept}."
        if exc.analysed
        else "Radio cannot store the upload (the server's storage is full or not "
        "writable); nothing was analysed."
    )
    return f"{what} Please tell the service administrators."


def describe(exc: DomainError) -> tuple[int, str]:
    """``(HTTP status, sentence)`` of a domain error."""
    if isinstance(exc, ModelServerError):
        # A bad answer (HTTP error, not JSON, broken contract) is the gateway's fault: 502.
        return MODEL_SERVER_STATUSES.get(exc.kind, 502), exc.message
    if isinstance(exc, StorageFull):
        return 507, _storage_message(exc)
    for cls, status in STATUSES.items():
        if isinstance(exc, cls):
            return status, exc.message
    return 500, MESSAGES[500]


def json_error_body(status: int, message: str | None = None) -> bytes:
    """The JSON error body, for writers outside Flask (the gunicorn worker)."""
    import json

    text = message or MESSAGES.get(status, "The request could not be handled.")
    return json.dumps({"error": text}).encode()


# Paths that always answer JSON, whatever the Accept header says.
_API_PATHS = ("/predict", "/health", "/version", "/openapi.json", "/metrics")
_API_PREFIXES = ("/api/", "/admin/models/tasks/", "/static/")
TITLES = {403: "Not allowed", 404: "Page not found", 500: "Something went wrong"}


def wants_html() -> bool:
    """True for a browser opening a page: not an API path, and HTML preferred to JSON."""
    if request.path in _API_PATHS or request.path.startswith(_API_PREFIXES):
        return False
    accept = request.accept_mimetypes
    return accept.best_match(["application/json", "text/html"]) == "text/html" and (
        accept["text/html"] > accept["application/json"])


def page_response(status: int, message: str) -> Response | None:
    """The error as an HTML page, or None when it cannot be drawn (the database down)."""
    try:
        html = render_template("error.html", status=status, message=message,
                               title=TITLES.get(status, "Error"))
    except Exception:  # the page needs the user; a broken database must not hide the error
        log.exception("could not draw the %d page", status)
        return None
    resp = current_app.make_response((html, status))
    return resp


def error_response(status: int, message: str, request_id: str | None = None) -> Response:
    """The one shape of every error body."""
    body: dict[str, str] = {"error": message}
    if request_id:
        body["id"] = request_id
    resp = jsonify(body)
    resp.status_code = status
    return resp


def _drain_body() -> None:
    """Consume the unread request body (bounded) so the server can send its answer.

    Closing a socket with unread input makes the kernel send a reset, and clients such as
    curl then report "connection reset" instead of our 413 message.
    """
    stream = request.environ.get("wsgi.input")
    length = request.content_length or 0
    if stream is None or length > _DRAIN_LIMIT:
        return
    remaining = length
    try:
        while remaining > 0:
            chunk = stream.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)
    except (OSError, ValueError, HTTPException):
        pass  # the client went away or stalled (408); nothing left to answer


def _too_large(_exc: RequestEntityTooLarge) -> Response:
    cfg = current_app.config["RADIO"]
    if not request.over_size_limit():  # type: ignore[attr-defined]  # app.platform.request
        # Werkzeug's form limits (parts, field size) raise 413 too: the size was fine.
        resp = error_response(
            400, "The form has too many fields or a field too large; send only the image "
            "in the field 'file'.")
        resp.headers["Connection"] = "close"
        return resp
    _drain_body()
    return error_response(413, f"The file is too large; the limit is {cfg.max_upload_mb:g} MB.")


def body_timeout_message(limit_s: float) -> str:
    """The 408 sentence, from the app or from the worker's event loop (gunicorn_worker)."""
    return f"The upload did not arrive within {limit_s:g} s; check the connection and try again."


def _timeout(_exc: RequestTimeout) -> Response:
    limit = current_app.config["RADIO"].body_timeout_s
    resp = error_response(408, body_timeout_message(limit))
    resp.headers["Connection"] = "close"  # the rest of the body is never read
    return resp


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    message = f"{request.method} is not allowed here." if code == 405 else MESSAGES.get(
        code, exc.description or exc.name)
    page = page_response(code, message) if code in (403, 404, 500) and wants_html() else None
    resp = page or error_response(code, message)
    if exc.code == 405 and exc.valid_methods:
        resp.headers["Allow"] = ", ".join(exc.valid_methods)
    return resp


def _api_error(exc: APIError) -> Response:
    return _answer(exc.status, exc.message, exc.request_id)


def _domain_error(exc: DomainError) -> Response:
    status, message = describe(exc)
    # A browser's form (a note, a read) gets the sentence on a page, a script its JSON.
    return _answer(status, message, exc.request_id, page=wants_html())


def _answer(status: int, message: str, request_id: str | None, page: bool = False) -> Response:
    resp = (page_response(status, message) if page else None) or error_response(
        status, message, request_id)
    if status == 503 and request.content_length:
        # Transient: say when to retry. A busy refusal never read the body, so the
        # connection is closed rather than kept to drain it (app/platform/timeouts.py).
        resp.headers["Connection"] = "close"
        resp.headers["Retry-After"] = "5"
    return resp


def _unexpected(exc: Exception) -> Response:
    # The traceback goes to the server log only; it never contains the upload's name.
    log.exception("unhandled error on %s %s", request.method, request.path)
    return (page_response(500, MESSAGES[500]) if wants_html() else None) or error_response(
        500, MESSAGES[500])


def register(app: Flask) -> None:
    """Install the JSON error handlers on ``app``."""
    app.register_error_handler(APIError, _api_error)
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(RequestTimeout, _timeout)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
