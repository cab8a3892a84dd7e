"""Security headers on every answer, from the app itself (nginx may add them again).

The page loads only its own scripts, styles and images (no CDN, no inline script), so the
Content-Security-Policy can be strict; ``frame-ancestors 'none'`` and X-Frame-Options stop
the page being framed (clickjacking); nosniff keeps browsers from guessing types of
uploads or JSON; no referrer leaves the site; the API answers are never cached.
"""

from __future__ import annotations

from flask import Flask, Response, request

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _add_headers(resp: Response) -> Response:
    for name, value in HEADERS.items():
        resp.headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def register(app: Flask) -> None:
    """Add the headers to every response of ``app``, errors included."""
    app.after_request(_add_headers)
