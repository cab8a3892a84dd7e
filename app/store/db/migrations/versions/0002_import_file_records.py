"""Import the prediction records that earlier versions kept as JSON files.

Before the database, each answer was ``<data dir>/predictions/<id>.json``. This revision
copies every one of them into ``predictions`` (nobody is known as the requester, so
``user_id`` stays empty); the files themselves are left in place. Rows already present
are skipped, so running it on a database that has them is harmless.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_predictions = sa.table(
    "predictions",
    *(sa.column(name) for name in (
        "id", "created_at", "user_id", "site", "image_sha256", "image_format", "image_bytes",
        "model_name", "model_version", "status", "label", "probabilities", "confidence",
        "needs_review", "ood_reason", "latency_ms", "error",
    )),
)
_predictions.c.probabilities.type = sa.JSON()
_predictions.c.created_at.type = sa.DateTime(timezone=True)


def _data_dir() -> Path:
    given = context.config.attributes.get("data_dir")
    if given is not None:
        return Path(given)
    from app.platform.config import load_config

    return load_config().data_dir


def _row(record: dict) -> dict:
    upload = record.get("upload") or {}
    result = record.get("result") or {}
    error = record.get("error")
    model = result.get("model") or {}
    created = datetime.fromisoformat(record["created_utc"]) if record.get("created_utc") else None
    return {
        "id": record["id"],
        "created_at": created or datetime.now(UTC),
        "user_id": None,
        "site": "",
        "image_sha256": upload.get("sha256", ""),
        "image_format": upload.get("format", ""),
        "image_bytes": int(upload.get("bytes", 0)),
        "model_name": model.get("name"),
        "model_version": model.get("version"),
        "status": "error" if error else result.get("status", "error"),
        "label": result.get("label"),
        "probabilities": result.get("probabilities"),
        "confidence": result.get("confidence"),
        "needs_review": bool(result.get("needs_review", False)),
        "ood_reason": result.get("ood_reason"),
        "latency_ms": result.get("latency_ms"),
        "error": (error or {}).get("message") if error else None,
    }


def upgrade() -> None:
    folder = _data_dir() / "predictions"
    if not folder.is_dir():
        return
    bind = op.get_bind()
    present = {r[0] for r in bind.execute(sa.text("SELECT id FROM predictions"))}
    rows = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text())
            row = _row(record)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged file is left for a person to look at, not fatal
        if row["id"] not in present and len(row["id"]) <= 32:
            rows.append(row)
            present.add(row["id"])
    if rows:
        op.bulk_insert(_predictions, rows)


def downgrade() -> None:
    # The files were never removed, so going back loses nothing; the rows stay too
    # (the previous schema is the same).
    pass
