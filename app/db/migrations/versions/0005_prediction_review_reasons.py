"""Keep why a prediction needs review, and the COVID decision rule it was answered under.

The page states every answer the same way: the decision, the COVID threshold that made it
(a COVID answer can have a higher bar beside it), and the review flag with its reasons
(low confidence, unfamiliar film). Earlier rows have neither: the flag stands alone.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("review_reasons", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("covid_threshold", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("covid_threshold")
        batch.drop_column("review_reasons")
