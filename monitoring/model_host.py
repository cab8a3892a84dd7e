"""The model server with Prometheus metrics: MLflow's scoring app wrapped, not changed.

``mlflow/serve.sh`` runs ``uvicorn monitoring.model_host:app``: the same ASGI app as
``mlflow.pyfunc.scoring_server.app`` (built from the registry version's own stored code,
whatever that version is), inside a middleware that times ``/invocations`` and counts its
images, and a metrics listener on its own port (MODEL_SERVER_METRICS_HOST [127.0.0.1] :
MODEL_SERVER_METRICS_PORT [9102]), which the security group opens to Prometheus only.
Nothing of the registry's ``serving/`` copy is needed, so every shipped version gets them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("radio.model_host")
INVOCATION_SECONDS = Histogram(
    "radio_model_inference_duration_seconds",
    "Time to answer one /invocations request on the model host.", ["status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
BATCH_SIZE = Histogram(
    "radio_model_batch_size", "Images per /invocations request.",
    buckets=(1, 2, 4, 8, 16, 32, 64))
IMAGES = Counter("radio_model_images_total", "Images sent to the model.")
MODEL_INFO = Gauge("radio_model_info", "The registered model this server loaded (always 1).",
                   ["name", "version", "alias"])


def count_images(body: bytes) -> int:
    """Images in a Radio ``/invocations`` body (0 when it is not one)."""
    try:
        inputs = json.loads(body).get("inputs", {})
        images = inputs.get("image", []) if isinstance(inputs, dict) else inputs
        return len(images) if isinstance(images, list) else 0
    except (ValueError, AttributeError):
        return 0


class MetricsMiddleware:
    """ASGI middleware: times /invocations and observes its batch size."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("path") != "/invocations":
            await self.inner(scope, receive, send)
            return
        started = time.perf_counter()
        chunks: list[bytes] = []
        status = {"code": 500}

        async def recv() -> dict:
            message = await receive()
            if message.get("type") == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def snd(message: dict) -> None:
            if message.get("type") == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.inner(scope, recv, snd)
        finally:
            n = count_images(b"".join(chunks))
            if n:
                BATCH_SIZE.observe(n)
                IMAGES.inc(n)
            INVOCATION_SECONDS.labels(str(status["code"])).observe(
                time.perf_counter() - started)


def _start_metrics() -> None:
    port = int(os.environ.get("MODEL_SERVER_METRICS_PORT", "9102"))
    host = os.environ.get("MODEL_SERVER_METRICS_HOST", "127.0.0.1")
    if port:
        try:
            start_http_server(port, addr=host)
        except OSError as exc:  # the model must serve even when its metrics cannot
            log.error("metrics NOT served on %s:%d: %s", host, port, exc)


def build() -> Any:
    """The wrapped scoring app (loads the model named by ``__pyfunc_model_path__``)."""
    from mlflow.pyfunc.scoring_server.app import app as scoring_app

    MODEL_INFO.labels(os.environ.get("RADIO_MODEL_NAME", "radio-cxr"),
                      os.environ.get("RADIO_MODEL_VERSION", "unregistered"),
                      os.environ.get("RADIO_MODEL_ALIAS", "production")).set(1)
    _start_metrics()
    return MetricsMiddleware(scoring_app)


app = build() if os.environ.get("__pyfunc_model_path__") else None
