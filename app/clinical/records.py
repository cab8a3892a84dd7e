"""Predictions in the database: what was asked, by whom, where, and what the model said.

``record`` is called once per analysed upload by ``app.clinical.predict``, which commits the
row before the answer is sent, so an acknowledged prediction survives a crash of the app.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.platform.config import Config
from app.store.db.models import Prediction


def record(
    session: Session,
    cfg: Config,
    request_id: str,
    user_id: int | None,
    image_sha256: str,
    fmt: str,
    size: int,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    source: dict[str, Any] | None = None,
    image_stats: dict[str, float] | None = None,
) -> Prediction:
    """Add one prediction to ``session`` (``result`` is the JSON answered, or ``error``);
    the caller commits."""
    result = result or {}
    model = result.get("model") or {}
    row = Prediction(
        id=request_id,
        user_id=user_id,
        site=cfg.site,
        image_sha256=image_sha256,
        image_format=fmt,
        image_bytes=size,
        source=source,
        model_name=model.get("name"),
        model_version=model.get("version"),
        status="error" if error else result.get("status", "error"),
        label=result.get("label"),
        probabilities=result.get("probabilities"),
        confidence=result.get("confidence"),
        needs_review=bool(result.get("needs_review", False)),
        review_reasons=result.get("review_reasons") or None,
        ood_reason=result.get("ood_reason"),
        ood_score=result.get("ood_score"),
        heatmap=result.get("heatmap"),
        decision=result.get("decision"),
        latency_ms=result.get("latency_ms"),
        error=error,
        image_stats=image_stats,
    )
    session.add(row)
    return row
