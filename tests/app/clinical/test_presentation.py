"""app/clinical/presentation.py: dates as people read them, never a Unix timestamp."""

from datetime import UTC, datetime, timedelta

from app.clinical.presentation import age, when


def test_when_reads_datetimes_naive_or_aware_and_timestamps():
    assert when(datetime(2026, 12, 7, 16, 5, tzinfo=UTC)) == "7 Dec 2026, 16:05 UTC"
    assert when(datetime(2026, 3, 1, 9, 0)) == "1 Mar 2026, 09:00 UTC"  # SQLite: naive UTC
    assert when(1796601600) == "7 Dec 2026, 00:00 UTC"
    assert when("2026-12-07T16:05:09.123+00:00") == "7 Dec 2026, 16:05 UTC"
    assert when("2026-12-07T17:05:00+01:00") == "7 Dec 2026, 16:05 UTC"
    assert when("yesterday") == "yesterday"
    assert when(None) == ""


def test_age_in_the_largest_whole_unit():
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert age(now - timedelta(seconds=30), now) == "just now"
    assert age(now - timedelta(minutes=5), now) == "5 min ago"
    assert age(now - timedelta(hours=3, minutes=59), now) == "3 h ago"
    assert age(now - timedelta(days=1, hours=2), now) == "1 day ago"
    assert age(now - timedelta(days=9), now) == "9 days ago"
