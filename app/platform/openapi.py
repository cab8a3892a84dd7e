"""``GET /openapi.json`` (OpenAPI 3.1 description of the JSON API) and ``GET /docs``."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template

from serving import schema

bp = Blueprint("openapi", __name__)

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "A sentence meant for the clinician."},
        "id": {"type": "string", "description": "Request id, when the upload was accepted."},
    },
}
# The answer is defined once, in serving/schema.py (shared with the model server).
_PREDICTION = schema.app_prediction()
_CHECK = {"type": "object", "properties": {
    "ok": {"type": "boolean"}, "detail": {"type": "string"}, "url": {"type": "string"},
    "breaker_open": {"type": "boolean"}}}
_HEALTH = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "down"]},
        "checks": {"type": "object", "description": "only on loopback or with the token",
                   "properties": {"model_server": _CHECK, "storage": _CHECK}},
    },
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def spec() -> dict[str, Any]:
    """The OpenAPI document of this app."""
    from app import __version__

    limit = current_app.config["RADIO"].max_upload_mb
    return {
        "openapi": "3.1.0",
        "info": {"title": "Radio clinician API", "version": __version__,
                 "description": "Chest X-ray decision support. Not a diagnosis."},
        "paths": {
            "/predict": {"post": {
                "summary": "Analyse one chest X-ray (PNG, JPEG or DICOM)",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {"multipart/form-data": {
                    "schema": {"type": "object", "required": ["file"], "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": f"PNG, JPEG or DICOM, at most {limit:g} MB"}}}}}},
                "responses": {
                    "200": _json("Prediction", "The model's answer"),
                    "400": _json("Error", "Empty, damaged, too small or oversized image"),
                    "413": _json("Error", "File larger than the upload limit"),
                    "401": _json("Error", "No valid API token (or login session)"),
                    "403": _json("Error", "Missing CSRF token on a browser session call"),
                    "415": _json("Error", "Not a PNG/JPEG/DICOM, or not multipart/form-data"),
                    "422": _json("Error", "A DICOM that is not a frontal chest radiograph"),
                    "502": _json("Error", "The model server failed or answered nonsense"),
                    "408": _json("Error", "The upload did not arrive within "
                                 "RADIO_BODY_TIMEOUT_S"),
                    "503": _json("Error", "The model server is unreachable, or Radio is busy"),
                    "504": _json("Error", "The model server did not answer in time"),
                    "507": _json("Error", "The image or its row could not be stored: no answer"),
                }}},
            "/health": {"get": {
                "summary": "Health of the app and its dependencies (details on loopback or "
                           "with Authorization: Bearer RADIO_HEALTH_TOKEN)",
                "responses": {"200": _json("Health", "Every dependency is ok"),
                              "503": _json("Health", "The model server or storage fails")}}},
            "/version": {"get": {
                "summary": "App version and last model (Python, MLflow, model server address "
                           "on loopback or with the health token)",
                "responses": {"200": {"description": "Versions",
                                      "content": {"application/json": {}}}}}},
        },
        "components": {"schemas": {"Prediction": _PREDICTION, "Error": _ERROR,
                                   "Health": _HEALTH},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI document."""
    return jsonify(spec())


@bp.get("/docs")
def docs() -> str:
    """A self-contained HTML rendering of the OpenAPI document (no CDN)."""
    doc = spec()
    return render_template("docs.html", doc=doc,
                           schemas={k: json.dumps(v, indent=2)
                                    for k, v in doc["components"]["schemas"].items()})
