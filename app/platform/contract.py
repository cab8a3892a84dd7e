"""Check the model server's ``/invocations`` answer before a clinician sees it.

The contract is :data:`serving.schema.PREDICTION` (the one definition of the answer, shared
with the pyfunc and the OpenAPI document), plus what a schema cannot say (checked here).
Anything else is a model-server bug: we answer 502 rather than show a guess.
"""

from __future__ import annotations

from typing import Any

from app.clinical import answer
from app.platform.model_client import ModelServerError
from serving import schema

# Probabilities come from a softmax in float32; allow its rounding error.
_SUM_TOLERANCE = 1e-3


class ContractError(ValueError):
    """The answer breaks the contract; the message says where (for the log, not the user)."""


def _semantics(item: dict[str, Any]) -> None:
    """What a JSON Schema cannot say: a diagnosis that is one of the classes, probabilities
    that sum to 1, a rectangular heatmap."""
    probs = item["probabilities"]
    if not probs:
        raise ContractError("probabilities are missing for a diagnosis")
    if abs(sum(probs.values()) - 1.0) > _SUM_TOLERANCE:
        raise ContractError(f"probabilities sum to {sum(probs.values()):.4f}, not 1")
    if item["label"] not in probs:
        raise ContractError(f"label {item['label']!r} is not one of the classes {sorted(probs)}")
    heatmap = item.get("heatmap")
    if heatmap is not None and len({len(row) for row in heatmap}) != 1:
        raise ContractError("heatmap rows have different lengths")


def parse_prediction(item: Any) -> dict[str, Any]:
    """One prediction dict -> the normalised fields the app returns; ContractError if bad."""
    try:
        schema.validate(item, schema.PREDICTION, "prediction")
    except schema.SchemaError as exc:
        raise ContractError(str(exc)) from exc
    parsed: dict[str, Any] = {
        "status": item["status"],
        "label": None,
        "probabilities": None,
        "confidence": None,
        "needs_review": item["needs_review"],
        # Model servers before the four-class versions send neither: a flag without reasons.
        "review_reasons": list(item.get("review_reasons") or []),
        "heatmap": None,
        "ood_reason": item["ood"]["reason"],
        "ood_score": item["ood"].get("score"),
        "model": {"name": item["model"]["name"], "version": str(item["model"]["version"])},
        "decision": _decision(item.get("decision")),
    }
    if item["status"] == "not_xray":
        # A diagnosis of something that is not a chest X-ray would be noise: drop it.
        return _explained(parsed)
    _semantics(item)
    probs = {str(k): float(v) for k, v in item["probabilities"].items()}
    confidence = item.get("confidence")
    parsed.update(
        label=item["label"],
        probabilities=probs,
        confidence=probs[item["label"]] if confidence is None else float(confidence),
        heatmap=item.get("heatmap"),
    )
    return _explained(parsed)


def _decision(decision: dict[str, Any] | None) -> dict[str, float | None]:
    """The decision thresholds the model reported; None for each one it did not."""
    decision = decision or {}
    return {key: None if decision.get(key) is None else float(decision[key])
            for key in ("covid_threshold", "review_threshold")}


def _explained(parsed: dict[str, Any]) -> dict[str, Any]:
    """The parsed answer with its statement in words (``app.clinical.answer``)."""
    parsed["explanation"] = answer.explain(
        parsed["status"], parsed["label"], parsed["probabilities"], parsed["confidence"],
        parsed["needs_review"], parsed["ood_reason"], parsed["decision"],
        parsed["review_reasons"])
    return parsed


def parse_response(body: Any) -> dict[str, Any]:
    """The whole ``/invocations`` body for one image -> its parsed prediction.

    Raises ModelServerError (kind "contract") with a user-facing message if the body breaks
    the contract; the precise reason is attached as ``__cause__`` for the log.
    """
    try:
        if not isinstance(body, dict) or not isinstance(body.get("predictions"), list):
            raise ContractError('answer has no "predictions" list')
        if len(body["predictions"]) != 1:
            raise ContractError(f"expected 1 prediction, got {len(body['predictions'])}")
        return parse_prediction(body["predictions"][0])
    except ContractError as exc:
        raise ModelServerError(
            "The model server sent an answer Radio cannot use; please report this.",
            kind="contract") from exc
