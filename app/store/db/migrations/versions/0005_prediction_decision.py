"""Keep the decision thresholds with each prediction, so pages can say why in words; allow
the "discarded" verdict (not a chest X-ray or unusable).

``{"covid_threshold", "review_threshold"}`` as the model reported them (serving/pyfunc.py);
rows of models that did not report them have none, and the pages describe the rule without
quoting its value (app/clinical/answer.py).

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


OLD_VERDICTS = "verdict IN ('validated', 'corrected', 'unknown')"
NEW_VERDICTS = "verdict IN ('validated', 'corrected', 'unknown', 'discarded')"


def _verdicts(condition: str) -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.drop_constraint("ck_reviews_verdict", type_="check")
        batch.create_check_constraint("ck_reviews_verdict", condition)


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("decision", sa.JSON(), nullable=True))
    _verdicts(NEW_VERDICTS)


def downgrade() -> None:
    op.execute("DELETE FROM reviews WHERE verdict = 'discarded'")
    _verdicts(OLD_VERDICTS)
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("decision")
