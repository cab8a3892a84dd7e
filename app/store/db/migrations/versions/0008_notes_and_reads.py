"""Clinicians' notes on their cases, and their own reads in teaching mode.

``case_notes``: one short note per case, written by the clinician who asked for it (their
own study reference, never a patient's name); shown only to its author and to radiologists.
``teaching_reads``: a case analysed in teaching mode has a row from the moment it is
analysed; its ``label`` stays empty (and Radio's answer hidden from the clinician) until
the clinician records their read.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "case_notes",
        sa.Column("prediction_id", sa.String(32), sa.ForeignKey("predictions.id"),
                  primary_key=True),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False,
                  index=True),
        sa.Column("text", sa.String(120), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "teaching_reads",
        sa.Column("prediction_id", sa.String(32), sa.ForeignKey("predictions.id"),
                  primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False,
                  index=True),
        sa.Column("label", sa.String(64)),
        sa.Column("blinded_at", TS, nullable=False),
        sa.Column("read_at", TS, index=True),
    )


def downgrade() -> None:
    op.drop_table("teaching_reads")
    op.drop_table("case_notes")
