"""The one definition of Radio's answer: JSON Schemas, and a small validator for them.

* :data:`PREDICTION` is one item of the model server's ``/invocations`` answer, i.e. what
  :class:`serving.pyfunc.RadioModel` returns per image (a test validates every answer of
  the shipped model against it);
* :data:`RESPONSE` is the whole ``/invocations`` body;
* :func:`app_prediction` is the web app's ``POST /predict`` answer, built from the same
  fields, and published as-is in the app's OpenAPI document;
* :func:`validate` checks an instance against these schemas; the web app's contract check
  runs it on every answer before a clinician sees it.

The validator supports the subset of JSON Schema used here (``type``, ``enum``,
``required``, ``properties``, ``additionalProperties``, ``items``, ``minimum``, ``maximum``,
``minLength``, ``minItems``, ``maxItems``). Pure Python: the web app imports it.
"""

from __future__ import annotations

import copy
import math
from typing import Any

STATUSES = ("ok", "not_xray")
# Largest heatmap side accepted from a model server (the shipped model sends 28).
MAX_HEATMAP_SIDE = 512

_UNIT = {"type": "number", "minimum": 0, "maximum": 1}

MODEL = {
    "type": "object",
    "required": ["name", "version"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "registered model name"},
        # The registry numbers versions; some servers send the number itself.
        "version": {"type": ["string", "integer"], "minLength": 1,
                    "description": "registered version that produced the answer"},
    },
}

# Fields shared by the model server's answer and the app's answer.
_SHARED: dict[str, dict[str, Any]] = {
    "status": {"type": "string", "enum": list(STATUSES),
               "description": "not_xray: refused, the image is not a frontal chest X-ray"},
    "label": {"type": ["string", "null"],
              "description": "the finding; null when not_xray (a refusal is no diagnosis)"},
    "probabilities": {"type": ["object", "null"], "additionalProperties": _UNIT,
                      "description": "calibrated probability of each class; they sum to 1"},
    "confidence": {**_UNIT, "type": ["number", "null"],
                   "description": "probability of the label"},
    "needs_review": {"type": "boolean",
                     "description": "too uncertain to stand without a radiologist's look"},
    "review_reasons": {"type": "array", "maxItems": 8,
                       "items": {"type": "string", "minLength": 1},
                       "description": "why needs_review is set, in words for the clinician "
                                      "(empty when it is not)"},
    "heatmap": {"type": ["array", "null"], "minItems": 1, "maxItems": MAX_HEATMAP_SIDE,
                "items": {"type": "array", "minItems": 1, "maxItems": MAX_HEATMAP_SIDE,
                          "items": _UNIT},
                "description": "low-resolution rows in [0, 1]: where the model looked"},
    "model": MODEL,
}

# Optional (models packaged before it omit it): the rule that turned probabilities into the
# label (serving/decision.py), so that every page can say why in words.
DECISION = {
    "type": "object",
    "properties": {
        "covid_threshold": {**_UNIT, "type": ["number", "null"],
                            "description": "COVID is named when its probability reaches "
                                           "this, even if another class is more probable"},
        "review_threshold": {**_UNIT, "type": ["number", "null"],
                             "description": "an answer less probable than this needs review"},
    },
}

PREDICTION: dict[str, Any] = {
    "type": "object",
    "required": ["status", "label", "probabilities", "needs_review", "ood", "model"],
    "properties": {
        **_SHARED,
        "decision": DECISION,
        "ood": {
            "type": "object",
            "required": ["reason"],
            "properties": {
                "score": {"type": "number", "description": "above threshold: not an X-ray"},
                "threshold": {"type": "number"},
                "reason": {"type": ["string", "null"], "description": "why it was refused"},
            },
        },
    },
}

RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["predictions"],
    "properties": {"predictions": {"type": "array", "items": PREDICTION}},
}


def app_prediction() -> dict[str, Any]:
    """Schema of the web app's ``POST /predict`` answer (the shared fields + app fields)."""
    shared = copy.deepcopy(_SHARED)
    return {
        "type": "object",
        "required": ["id", *shared, "latency_ms"],
        "properties": {
            "id": {"type": "string", "description": "names the stored upload and record"},
            **shared,
            "ood_reason": {"type": ["string", "null"], "description": "why it was refused"},
            "ood_score": {"type": ["number", "null"],
                          "description": "not-a-chest-X-ray score; above 1 is refused"},
            "latency_ms": {"type": "number", "description": "time spent answering"},
            "decision": copy.deepcopy(DECISION),
            "explanation": {
                "type": "object",
                "description": "the answer in words, as Radio's pages state it",
                "properties": {
                    "headline": {"type": "string", "description": "the decision"},
                    "why": {"type": "string", "description": "why, thresholds included"},
                    "review": {"type": ["string", "null"],
                               "description": "why it needs a radiologist; null if not"},
                },
            },
        },
    }


class SchemaError(ValueError):
    """An instance does not match its schema; the message says where."""


_TYPES: dict[str, Any] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def _plain_numbers_within(items: list, schema: dict[str, Any]) -> bool:
    """Whether every item is a plain finite int/float within the bounds of a number schema.

    A heatmap is 784 numbers: checked one call each they cost ~3 ms of every answer. True
    lets the caller skip the per-item walk; False (anything unusual: NaN, a bool, a NumPy
    scalar, a bound crossed, another schema) sends it through ``validate`` item by item,
    which decides and names the first bad item."""
    if schema.get("type") != "number" or set(schema) - {"type", "minimum", "maximum",
                                                        "description"}:
        return False
    lo, hi = schema.get("minimum", -math.inf), schema.get("maximum", math.inf)
    return all((type(v) is float or type(v) is int) and lo <= v <= hi and math.isfinite(v)
               for v in items)


def validate(instance: Any, schema: dict[str, Any], where: str = "answer") -> None:
    """Raise :class:`SchemaError` naming the first place ``instance`` breaks ``schema``."""
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else types
        if not any(_TYPES[t](instance) for t in allowed):
            raise SchemaError(f"{where} is not of type {' or '.join(allowed)}")
    if "enum" in schema and instance not in schema["enum"]:
        raise SchemaError(f"{where}={instance!r} is not one of {schema['enum']}")
    if _TYPES["number"](instance):
        if not math.isfinite(instance):
            raise SchemaError(f"{where} is not a finite number")
        if "minimum" in schema and instance < schema["minimum"]:
            raise SchemaError(f"{where}={instance!r} is below {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            raise SchemaError(f"{where}={instance!r} is above {schema['maximum']}")
    if isinstance(instance, str) and len(instance) < schema.get("minLength", 0):
        raise SchemaError(f"{where} is empty")
    if isinstance(instance, list):
        if not schema.get("minItems", 0) <= len(instance) <= schema.get("maxItems", math.inf):
            raise SchemaError(f"{where} has {len(instance)} items")
        if "items" in schema and not _plain_numbers_within(instance, schema["items"]):
            for i, item in enumerate(instance):
                validate(item, schema["items"], f"{where}[{i}]")
    if isinstance(instance, dict):
        for key in schema.get("required", ()):
            if key not in instance:
                raise SchemaError(f"{where}.{key} is missing")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in instance.items():
            if key in props:
                validate(value, props[key], f"{where}.{key}")
            elif extra is False:
                raise SchemaError(f"{where}.{key} is not expected")
            elif isinstance(extra, dict):
                validate(value, extra, f"{where}[{key!r}]")
