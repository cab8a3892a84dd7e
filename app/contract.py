"""Check the model server's ``/invocations`` answer before a clinician sees it.

The contract (fixed with the model-server side)::

    {"predictions": [{"status": "ok"|"not_xray", "label": str|null,
                      "probabilities": {class: p}, "confidence": float|null,
                      "needs_review": bool, "ood": {...}, "heatmap": [[float]]|null,
                      "model": {"name": str, "version": str}}]}

Anything else is a model-server bug: we answer 502 rather than show a guess.
"""

from __future__ import annotations

import math
from typing import Any

from app.model_client import ModelServerError

STATUSES = ("ok", "not_xray")
# Probabilities come from a softmax in float32; allow its rounding error.
_SUM_TOLERANCE = 1e-3
_MAX_HEATMAP_SIDE = 512


class ContractError(ValueError):
    """The answer breaks the contract; the message says where (for the log, not the user)."""


def _unit_float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractError(f"{where} is not a number")
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ContractError(f"{where}={number!r} is outside [0, 1]")
    return number


def _probabilities(value: Any) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise ContractError("probabilities is not a non-empty object")
    probs = {str(k): _unit_float(v, f"probabilities[{k!r}]") for k, v in value.items()}
    if abs(sum(probs.values()) - 1.0) > _SUM_TOLERANCE:
        raise ContractError(f"probabilities sum to {sum(probs.values()):.4f}, not 1")
    return probs


def _heatmap(value: Any) -> list[list[float]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > _MAX_HEATMAP_SIDE:
        raise ContractError("heatmap is not a non-empty list of rows")
    width = len(value[0]) if isinstance(value[0], list) else 0
    if not 0 < width <= _MAX_HEATMAP_SIDE:
        raise ContractError("heatmap rows are empty or too long")
    rows = []
    for i, row in enumerate(value):
        if not isinstance(row, list) or len(row) != width:
            raise ContractError(f"heatmap row {i} is not a list of {width} numbers")
        rows.append([_unit_float(v, f"heatmap[{i}]") for v in row])
    return rows


def _model(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ContractError("model is not an object")
    name, version = value.get("name"), value.get("version")
    if not isinstance(name, str) or not name:
        raise ContractError("model.name is missing")
    if isinstance(version, bool) or not isinstance(version, str | int) or version == "":
        raise ContractError("model.version is missing")
    return {"name": name, "version": str(version)}


def _ood_reason(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ContractError("ood is not an object")
    reason = value.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ContractError("ood.reason is not text")
    return reason


def parse_prediction(item: Any) -> dict[str, Any]:
    """One prediction dict -> the normalised fields the app returns; ContractError if bad."""
    if not isinstance(item, dict):
        raise ContractError("prediction is not an object")
    status = item.get("status")
    if status not in STATUSES:
        raise ContractError(f"status {status!r} is not one of {STATUSES}")
    needs_review = item.get("needs_review")
    if not isinstance(needs_review, bool):
        raise ContractError("needs_review is not a boolean")
    parsed: dict[str, Any] = {
        "status": status,
        "label": None,
        "probabilities": None,
        "confidence": None,
        "needs_review": needs_review,
        "heatmap": None,
        "ood_reason": _ood_reason(item.get("ood")),
        "model": _model(item.get("model")),
    }
    if status == "not_xray":
        # A diagnosis of something that is not a chest X-ray would be noise: drop it.
        return parsed
    probs = _probabilities(item.get("probabilities"))
    label = item.get("label")
    if label not in probs:
        raise ContractError(f"label {label!r} is not one of the classes {sorted(probs)}")
    confidence = item.get("confidence")
    parsed.update(
        label=label,
        probabilities=probs,
        confidence=probs[label] if confidence is None else _unit_float(confidence, "confidence"),
        heatmap=_heatmap(item.get("heatmap")),
    )
    return parsed


def parse_response(body: Any) -> dict[str, Any]:
    """The whole ``/invocations`` body for one image -> its parsed prediction.

    Raises ModelServerError(502) with a user-facing message if the body breaks the contract;
    the precise reason is attached as ``__cause__`` for the log.
    """
    try:
        if not isinstance(body, dict) or not isinstance(body.get("predictions"), list):
            raise ContractError('answer has no "predictions" list')
        if len(body["predictions"]) != 1:
            raise ContractError(f"expected 1 prediction, got {len(body['predictions'])}")
        return parse_prediction(body["predictions"][0])
    except ContractError as exc:
        raise ModelServerError(
            502, "The model server sent an answer Radio cannot use; please report this."
        ) from exc
