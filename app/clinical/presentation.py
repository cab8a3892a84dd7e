"""How the pages show values: human dates and ages (never a Unix timestamp), percents, the
answer and its review state in words (``app.clinical.answer``, ``app.clinical.reviews``), as
Jinja filters and globals."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask

from app.clinical import answer, reviews


def _aware(value: datetime | float | int | str) -> datetime:
    """A datetime in UTC from a datetime (naive ones are UTC, as SQLite returns them), an
    ISO 8601 text (the JSON files' ``created_utc``) or a Unix timestamp."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def when(value: datetime | float | int | str | None) -> str:
    """``7 Dec 2026, 16:20 UTC``; a text that is no date is shown as it is."""
    if value is None or value == "":
        return ""
    try:
        moment = _aware(value)
    except ValueError:
        return str(value)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def age(value: datetime | float | int | str | None, now: datetime | None = None) -> str:
    """How long ago, in the largest whole unit: ``just now``, ``5 min ago``, ``3 h ago``,
    ``2 days ago``."""
    if value is None or value == "":
        return ""
    seconds = ((now or datetime.now(UTC)) - _aware(value)).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    return f"{days} day{'' if days == 1 else 's'} ago"


def install(app: Flask) -> None:
    """Register the filters and globals on ``app``'s Jinja environment."""
    app.add_template_filter(when, "when")
    app.add_template_filter(age, "age")
    app.add_template_filter(answer.percent, "pct")
    app.add_template_global(answer.of_record, "explain")
    app.add_template_global(reviews.describe, "review_words")
