"""Prometheus metrics of the web app, correct under several gunicorn workers.

Every worker records into ``prometheus_client``'s multiprocess files (the directory
``PROMETHEUS_MULTIPROC_DIR``, set by ``app/platform/gunicorn.conf.py`` before any worker starts);
the gunicorn master serves their sum on its own port (RADIO_METRICS_PORT, loopback by
default: ``serve``), never through nginx, so only Prometheus can scrape them. Without
gunicorn (the tests' client) the same metrics live in the process's default registry.

The drift gauges are read from the monitoring jobs' latest reports at scrape time
(:class:`ReportCollector`), so a job that runs elsewhere needs no metrics server of its own.
Request timing (Flask hooks) is ``app.platform.request_timing``; this module needs no Flask,
so that domain code (reviews, the model client) can count.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("radio.metrics")

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUEST_SECONDS = Histogram(
    "radio_http_request_duration_seconds", "Time to answer an HTTP request.",
    ["route", "method", "status"], buckets=_LATENCY_BUCKETS)
PREDICTIONS = Counter(
    "radio_predictions_total",
    "Analysed uploads by answer: status ok (label = the finding), not_xray (refused: not a "
    "chest X-ray) or error (label none).", ["label", "status"])
CONFIDENCE = Histogram(
    "radio_prediction_confidence", "Calibrated probability of the answered label.",
    ["label"], buckets=(0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0))
MODEL_SECONDS = Histogram(
    "radio_model_server_request_duration_seconds",
    "Time of one /invocations call to the model server, seen from the app.",
    buckets=_LATENCY_BUCKETS)
MODEL_ERRORS = Counter(
    "radio_model_server_errors_total",
    "Model server calls without a usable answer: unreachable, timeout, http, not_json, "
    "contract (an answer breaking the schema), breaker_open (not tried).", ["kind"])
REVIEWS = Counter(
    "radio_reviews_total",
    "Radiologists' verdicts: validated (agrees with the model), corrected, unknown.",
    ["verdict"])


def observe_prediction(result: dict[str, Any] | None, error: bool = False) -> None:
    """Count one analysed upload (``result``: the app's answer)."""
    if error or not result:
        PREDICTIONS.labels(label="none", status="error").inc()
        return
    status = result.get("status", "error")
    label = result.get("label") or "none"
    PREDICTIONS.labels(label=label, status=status).inc()
    if status == "ok" and result.get("confidence") is not None:
        CONFIDENCE.labels(label=label).observe(float(result["confidence"]))


# --- drift reports -> gauges ------------------------------------------------------------

REPORT_FILES = {"data": "latest-data-drift.json", "model": "latest-model-drift.json"}


def reports_dir(data_dir: Path) -> Path:
    """Where the monitoring jobs write their latest reports (read by the admin page too)."""
    return Path(os.environ.get("RADIO_MONITORING_DIR") or Path(data_dir) / "monitoring")


def read_report(data_dir: Path, kind: str) -> dict[str, Any] | None:
    """The latest report of ``kind`` ("data" or "model"), or None if none or unreadable."""
    path = reports_dir(data_dir) / REPORT_FILES[kind]
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        log.warning("unreadable monitoring report %s", path.name)
        return None


class ReportCollector(Collector):
    """Gauges from the latest drift reports, read at each scrape."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        data = read_report(self.data_dir, "data")
        model = read_report(self.data_dir, "model")
        detected = GaugeMetricFamily(
            "radio_data_drift_detected",
            "1 when the latest data-drift report found drift in the group (site/source or "
            "overall), 0 when not; absent when the group was too small to judge.", labels=["group"])
        pvalue = GaugeMetricFamily(
            "radio_data_drift_p_value", "p-value of the group's last check (its largest over the "
            "training sources and their mixture: small = like none of them).",
            labels=["group"])
        flagged = GaugeMetricFamily(
            "radio_model_drift_flagged",
            "1 when a metric on validated cases is worse than the model card's figure (exact "
            "binomial test, Holm over the report's groups x metrics).", labels=["group", "metric"])
        last = GaugeMetricFamily(
            "radio_monitoring_last_run_timestamp_seconds",
            "When the latest report of each kind was made (Unix time).", labels=["kind"])
        for r in (data or {}).get("groups", []):
            if r.get("judged"):
                detected.add_metric([r["group"]], float(bool(r["drift"])))
                pvalue.add_metric([r["group"]], float(r["p_value"]))
        for r in (model or {}).get("groups", []):
            for name, m in r.get("metrics", {}).items():
                if m.get("judged"):
                    flagged.add_metric([r["group"], name], float(bool(m.get("worse"))))
        for kind, report in (("data", data), ("model", model)):
            if report and "created_unix" in report:
                last.add_metric([kind], float(report["created_unix"]))
        yield from (detected, pvalue, flagged, last)


def registry(data_dir: Path):
    """The registry a scrape reads: every worker's metrics plus the report gauges."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    reg = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(reg)
    else:  # one process: its own metrics
        from prometheus_client import REGISTRY

        for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001
            reg.register(collector)
    reg.register(ReportCollector(data_dir))
    return reg


def serve(port: int, host: str, data_dir: Path) -> None:
    """Serve ``/metrics`` on ``host:port`` from this process (the gunicorn master)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=registry(data_dir))
