"""TEST DOUBLE of ``monitoring.drift_jobs`` (the real drift statistics are issue 16's): the two
functions the lifecycle's drift jobs call, with the agreed return shape. Behaviour from
``RADIO_TEST_DRIFT``: ``data`` / ``model`` (that kind drifts), ``raise`` (both fail),
anything else (no drift). Used only by tests/lifecycle to test the job plumbing."""

from __future__ import annotations

import os


def _result(kind: str) -> dict:
    mode = os.environ.get("RADIO_TEST_DRIFT", "")
    if mode == "raise":
        raise RuntimeError(f"{kind} drift statistics unavailable (test double)")
    drift = mode == kind
    word = "DETECTED" if drift else "none"
    return {"drift": drift, "summary": f"test double: {kind} drift {word}",
            "sources": {"st-elsewhere": {"drift": drift}}}


def data_drift_job() -> dict:
    """Data drift (test double)."""
    return _result("data")


def model_drift_job() -> dict:
    """Model drift (test double)."""
    return _result("model")
