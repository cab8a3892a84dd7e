"""The tables of Radio's clinical loop (SQLAlchemy 2 declarative models).

Users and their API tokens, predictions (one per analysed image), radiologists' reviews of
them, and the append-only audit log. The schema itself is created by the Alembic
migrations in ``app/store/db/migrations``; these classes must match them (a test compares).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ROLES = ("clinician", "radiologist", "admin")
# What a role may do is cumulative: a radiologist can do all a clinician can, and so on.
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
VERDICTS = ("validated", "corrected", "unknown", "discarded")
# What a predictions row is: the model's analysis of an upload, or an image a radiologist
# contributed for the dataset (no model answer). The database refuses any other (0010).
PREDICTION_KINDS = ("analysis", "contribution")
DATASET_KINDS = ("production", "reference")


def utcnow() -> datetime:
    """Timezone-aware now; every timestamp in the database is UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every Radio table."""

    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class User(Base):
    """A person (or a script) who uses Radio, with one role."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    # None: the account logs in only with API tokens (scripts); never a default password.
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # Changing it logs out every browser session of the user (sessions carry a copy).
    session_nonce: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    def can(self, role: str) -> bool:
        """True when this user's role is ``role`` or above it."""
        return self.active and ROLE_RANK[self.role] >= ROLE_RANK[role]


class ApiToken(Base):
    """A personal API token; only its SHA-256 is stored (the token is random, 256 bits)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(back_populates="tokens")


class Prediction(Base):
    """One analysed image: who asked, where, which model answered what, how fast."""

    __tablename__ = "predictions"
    __table_args__ = (
        CheckConstraint("kind IN ('analysis', 'contribution')", name="ck_predictions_kind"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the request id
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    site: Mapped[str] = mapped_column(String(64), default="")
    image_sha256: Mapped[str] = mapped_column(String(64), index=True)
    image_format: Mapped[str] = mapped_column(String(8))
    image_bytes: Mapped[int] = mapped_column(Integer)
    # Where the image comes from (DICOM institution, manufacturer, view, modality).
    source: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    model_name: Mapped[str | None] = mapped_column(String(128), default=None)
    model_version: Mapped[str | None] = mapped_column(String(32), default=None)
    status: Mapped[str] = mapped_column(String(16))  # ok | not_xray | error | contributed
    kind: Mapped[str] = mapped_column(String(16), default="analysis",
                                      server_default="analysis")  # PREDICTION_KINDS
    label: Mapped[str | None] = mapped_column(String(64), default=None)
    probabilities: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    # Why needs_review is set, in words (low confidence, unfamiliar film); None before 0006.
    review_reasons: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    ood_reason: Mapped[str | None] = mapped_column(Text, default=None)
    ood_score: Mapped[float | None] = mapped_column(Float, default=None)  # above 1: refused
    # Statistics of the model input (serving.image_stats) for data drift; older rows: None.
    image_stats: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    heatmap: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    # The thresholds of the rule that named the label (serving/decision.py); None for rows
    # of models that did not report them.
    decision: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # app.clinical.reviews.STATES, kept by app/store/db/review_state.py on every write of
    # this row or its reviews (the history filters on it; migration 0009).
    review_state: Mapped[str] = mapped_column(String(16), default="unreviewed",
                                              server_default="unreviewed")

    user: Mapped[User | None] = relationship()
    reviews: Mapped[list[Review]] = relationship(
        back_populates="prediction", order_by="Review.created_at"
    )


class Review(Base):
    """A radiologist's verdict on a prediction: validated, corrected (to ``label``), unknown."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prediction_id: Mapped[str] = mapped_column(ForeignKey("predictions.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    verdict: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(64), default=None)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    prediction: Mapped[Prediction] = relationship(back_populates="reviews")
    reviewer: Mapped[User] = relationship()


class ImageReviewState(Base):
    """Where an image (all uploads of one content) stands in the review queue, kept by
    app/store/db/review_state.py in the transaction of every write that changes it; only
    images with an upload that can be queued (analysed or contributed) have a row."""

    __tablename__ = "image_review_states"

    image_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_id: Mapped[str] = mapped_column(String(32))  # the oldest queued upload
    first_at: Mapped[datetime] = mapped_column()
    uploads: Mapped[int] = mapped_column(Integer)  # queued uploads
    # Distinct answers among each reviewer's latest review (more than one: disagreement).
    opinions: Mapped[int] = mapped_column(Integer)
    # Index of app.clinical.review_queue.REASONS; None: reviewed, the reviewers agree.
    rank: Mapped[int | None] = mapped_column(Integer, default=None)


class AuditEntry(Base):
    """Who did what, when; the database refuses UPDATE and DELETE on this table."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(128), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class CaseNote(Base):
    """A clinician's short note on their own case (a study reference, never a patient's
    name); only its author and radiologists see it (``app.notes``)."""

    __tablename__ = "case_notes"

    prediction_id: Mapped[str] = mapped_column(ForeignKey("predictions.id"), primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    text: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TeachingRead(Base):
    """A case analysed in teaching mode: Radio's answer stays hidden from the clinician until
    ``label``, their own read, is recorded (``app.teaching``)."""

    __tablename__ = "teaching_reads"

    prediction_id: Mapped[str] = mapped_column(ForeignKey("predictions.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str | None] = mapped_column(String(64), default=None)
    blinded_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(default=None, index=True)


class DatasetVersion(Base):
    """One dataset version (``app.datasets.service``): who made it, when, what it holds.
    The folder ``artefact`` (relative to the data directory, with its ``manifest.csv``) is
    the version itself; this row is its record, written in the same step (0010)."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("kind", "version", name="uq_dataset_versions_kind_version"),
        CheckConstraint("kind IN ('production', 'reference')", name="ck_dataset_versions_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # DATASET_KINDS
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the version's sorted (image, label) pairs: equal content, equal hash.
    content_sha256: Mapped[str] = mapped_column(String(64))
    images: Mapped[int] = mapped_column(Integer)
    per_class: Mapped[dict[str, Any]] = mapped_column()
    per_source: Mapped[dict[str, Any]] = mapped_column()
    # Kind-specific facts: missing_images (production); initial, production (reference).
    detail: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    artefact: Mapped[str] = mapped_column(String(255))
