"""Keep the "not a chest X-ray" score of each prediction beside its reason.

The gate's score (above 1: unlike every chest X-ray seen in training) is what drift
monitoring and threshold reviews need; earlier rows have none.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("ood_score", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("ood_score")
