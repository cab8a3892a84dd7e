"""Review state kept in the database (issue 25: the queue and the history by review state
read one page, under 200 ms at 10,000 predictions; ``make bench-pages``).

* ``predictions.review_state`` and the index ``(review_state, created_at)``: the history
  filtered by review state, newest first;
* ``image_review_states``: per image content its place in the queue (oldest queued upload,
  uploads, opinions, reason rank), with the index ``(rank, first_at, image_sha256)``: the
  queue's order;
* the index ``reviews (reviewer_id, prediction_id)``: the disagreements a radiologist
  already reviewed, left out of their queue;
* both filled from the rows already there (``app/store/db/review_state.py``, which keeps
  them from now on).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("predictions", sa.Column("review_state", sa.String(16), nullable=False,
                                           server_default="unreviewed"))
    op.create_index("ix_predictions_review_state", "predictions",
                    ["review_state", "created_at"])
    op.create_table(
        "image_review_states",
        sa.Column("image_sha256", sa.String(64), primary_key=True),
        sa.Column("first_id", sa.String(32), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploads", sa.Integer, nullable=False),
        sa.Column("opinions", sa.Integer, nullable=False),
        sa.Column("rank", sa.Integer),
    )
    op.create_index("ix_image_review_states_queue", "image_review_states",
                    ["rank", "first_at", "image_sha256"])
    op.create_index("ix_reviews_reviewer", "reviews", ["reviewer_id", "prediction_id"])
    from app.store.db import review_state

    review_state.rebuild_connection(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_reviews_reviewer", table_name="reviews")
    op.drop_index("ix_image_review_states_queue", table_name="image_review_states")
    op.drop_table("image_review_states")
    op.drop_index("ix_predictions_review_state", table_name="predictions")
    # Native DROP COLUMN also on SQLite (>= 3.35), as in 0006: a batch copy would drop and
    # recreate the table, which the reviews' foreign keys forbid once there are rows.
    op.execute("ALTER TABLE predictions DROP COLUMN review_state")
