"""JSON errors for the API: a clinician's browser gets a sentence, never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

log = logging.getLogger("radio.errors")

# Reading at most this many extra bytes of a rejected oversized body lets the client
# receive the 413 instead of a connection reset; bigger bodies are cut off.
_DRAIN_LIMIT = 64 * 1024 * 1024


class APIError(Exception):
    """An error answered as ``{"error": message, "id": ...}`` with an HTTP status."""

    def __init__(self, status: int, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.request_id = request_id


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
    except (OSError, ValueError):
        pass  # the client went away; nothing left to answer


def _too_large(_exc: RequestEntityTooLarge) -> Response:
    _drain_body()
    limit = current_app.config["RADIO"].max_upload_mb
    return error_response(413, f"The file is too large; the limit is {limit:g} MB.")


def _http_error(exc: HTTPException) -> Response:
    messages = {
        404: "There is no such page or API endpoint.",
        405: f"{request.method} is not allowed here.",
    }
    message = messages.get(exc.code or 500, exc.description or exc.name)
    resp = error_response(exc.code or 500, message)
    if exc.code == 405 and exc.valid_methods:
        resp.headers["Allow"] = ", ".join(exc.valid_methods)
    return resp


def _api_error(exc: APIError) -> Response:
    return error_response(exc.status, exc.message, exc.request_id)


def _unexpected(exc: Exception) -> Response:
    # The traceback goes to the server log only; it never contains the upload's name.
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "Internal error in the Radio web app; please try again.")


def register(app: Flask) -> None:
    """Install the JSON error handlers on ``app``."""
    app.register_error_handler(APIError, _api_error)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
