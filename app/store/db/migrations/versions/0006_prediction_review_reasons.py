"""Keep why a prediction needs review, in words (low confidence, unfamiliar film).

The page states the review flag with its reasons; the four-class models send them (a film
unlike the training films is flagged even when the model is confident). Earlier rows have
none: the page then gives the low-confidence reason it can infer.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("review_reasons", sa.JSON(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Native DROP COLUMN (SQLite >= 3.35): a batch copy drops and recreates the table,
        # which the reviews' foreign keys forbid once there are rows.
        op.execute("ALTER TABLE predictions DROP COLUMN review_reasons")
    else:
        op.drop_column("predictions", "review_reasons")
