"""Every request timed by route, method and status into ``metrics.REQUEST_SECONDS``.

The Flask hooks of ``app.platform.metrics``, kept apart so that the metrics themselves
need no Flask.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from app.platform.metrics import REQUEST_SECONDS


def route_label() -> str:
    """The matched URL rule (``/history/<pred_id>``), never the raw path (bounded labels)."""
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def init_app(app: Flask) -> None:
    """Time every request by route, method and status."""

    @app.before_request
    def _start() -> None:
        g.metrics_t0 = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        t0 = g.pop("metrics_t0", None)
        if t0 is not None:
            REQUEST_SECONDS.labels(route_label(), request.method,
                                   str(response.status_code)).observe(time.perf_counter() - t0)
        return response
