"""Contributions typed by the database; dataset versions recorded in it.

* ``predictions.kind``: ``analysis`` (the model's answer to an upload) or ``contribution``
  (an image a radiologist contributed for the dataset, no model answer), refused by a CHECK
  when anything else. Rows from before are backfilled from their status: ``contributed``
  was the only mark of a contribution.
* ``dataset_versions``: one row per dataset version (the folder under
  ``<data dir>/datasets/<kind>/v<N>`` stays the artefact). The version logs earlier
  versions kept (``<kind>/versions.jsonl``) are imported; a version already recorded is
  skipped, so importing again is harmless. The logs are left in place and no longer written.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
KINDS = ("production", "reference")

_versions = sa.table(
    "dataset_versions",
    *(sa.column(name) for name in ("kind", "version", "created_at", "created_by",
                                   "content_sha256", "images", "per_class", "per_source",
                                   "detail", "artefact")),
)
for _name in ("per_class", "per_source", "detail"):
    _versions.c[_name].type = sa.JSON()
_versions.c.created_at.type = TS


def _data_dir() -> Path:
    given = context.config.attributes.get("data_dir")
    if given is not None:
        return Path(given)
    from app.platform.config import load_config

    return load_config().data_dir


def content_sha256(rows: list[dict[str, str]]) -> str:
    """The formula of ``app.datasets.service.content_sha256``, frozen here with the
    migration (the service may change; what 0010 imported must not)."""
    pairs = sorted(f"{r.get('sha256') or r.get('file', '')}\t{r.get('label', '')}"
                   for r in rows)
    return hashlib.sha256("\n".join(pairs).encode()).hexdigest()


def _manifest(folder: Path) -> list[dict[str, str]]:
    try:
        with open(folder / "manifest.csv", newline="") as fh:
            return list(csv.DictReader(fh))
    except OSError:
        return []  # a version whose folder is gone: recorded all the same, its hash of none


def _imported(kind: str, entry: dict, data_dir: Path) -> dict:
    created = entry.get("created_utc")
    when = datetime.fromisoformat(created) if created else datetime.now(UTC)
    detail = {k: entry[k] for k in ("missing_images", "initial", "production") if k in entry}
    artefact = f"datasets/{kind}/v{entry['version']}"
    return {"kind": kind, "version": int(entry["version"]),
            "created_at": when if when.tzinfo else when.replace(tzinfo=UTC),
            "created_by": str(entry.get("by", ""))[:64],
            "content_sha256": content_sha256(_manifest(data_dir / artefact)),
            "images": int(entry.get("images", 0)), "per_class": entry.get("per_class") or {},
            "per_source": entry.get("per_source") or {}, "detail": detail or None,
            "artefact": artefact}


def import_logs(data_dir: Path) -> None:
    """Every entry of the JSONL version logs not yet recorded (unreadable lines skipped)."""
    conn = op.get_bind()
    for kind in KINDS:
        log = data_dir / "datasets" / kind / "versions.jsonl"
        if not log.is_file():
            continue
        known = set(conn.execute(sa.select(_versions.c.version)
                                 .where(_versions.c.kind == kind)).scalars())
        for line in log.read_text().splitlines():
            try:
                entry = json.loads(line)
                row = _imported(kind, entry, data_dir)
            except (ValueError, KeyError, TypeError):
                continue
            if row["version"] not in known:
                conn.execute(_versions.insert().values(**row))
                known.add(row["version"])


def upgrade() -> None:
    # A column CHECK inside ADD COLUMN: SQLite cannot add a table constraint without
    # rebuilding ``predictions``, which the reviews' foreign keys forbid.
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column(
            "kind", sa.String(16),
            sa.CheckConstraint("kind IN ('analysis', 'contribution')",
                               name="ck_predictions_kind"),
            nullable=False, server_default="analysis"))
    op.execute("UPDATE predictions SET kind = 'contribution' WHERE status = 'contributed'")
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("images", sa.Integer, nullable=False),
        sa.Column("per_class", sa.JSON, nullable=False),
        sa.Column("per_source", sa.JSON, nullable=False),
        sa.Column("detail", sa.JSON),
        sa.Column("artefact", sa.String(255), nullable=False),
        sa.UniqueConstraint("kind", "version", name="uq_dataset_versions_kind_version"),
        sa.CheckConstraint("kind IN ('production', 'reference')",
                           name="ck_dataset_versions_kind"),
    )
    import_logs(_data_dir())


def downgrade() -> None:
    op.drop_table("dataset_versions")
    # ALTER TABLE ... DROP COLUMN, no rebuild (see upgrade): SQLite drops a column CHECK
    # with its column.
    op.drop_column("predictions", "kind")
