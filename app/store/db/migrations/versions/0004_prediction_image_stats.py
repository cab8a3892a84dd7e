"""Keep the model input's image statistics with each prediction, for data drift.

``serving.image_stats`` (brightness, contrast, roughness, percentiles, border): the
model-independent half of what the drift job compares; earlier rows have none and the job
computes theirs from the stored image.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("image_stats", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("image_stats")
