"""Indexes for the paged history and review queue (issue 25: one page read from the
database, under 200 ms a page at 10,000 predictions; ``make bench-pages``).

* ``predictions (status, image_sha256, created_at, needs_review)``: the queue groups the
  queued statuses by image and takes each image's first upload and flag, from the index
  alone (no table rows read);
* ``predictions (user_id, created_at)``: a clinician's history, newest first;
* ``predictions (label, created_at)``: the history filtered by label;
* ``reviews (prediction_id, reviewer_id, created_at)``: each reviewer's latest review of a
  prediction (review state and the queue's opinions).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_predictions_queue", "predictions",
     ["status", "image_sha256", "created_at", "needs_review"]),
    ("ix_predictions_user_created", "predictions", ["user_id", "created_at"]),
    ("ix_predictions_label_created", "predictions", ["label", "created_at"]),
    ("ix_reviews_latest", "reviews", ["prediction_id", "reviewer_id", "created_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
