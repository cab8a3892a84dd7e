"""lifecycle/events.py: the append-only event log."""

from lifecycle import events


def test_events_are_appended_in_order_and_survive_reopening(tmp_path):
    log = tmp_path / "sub" / "events.jsonl"
    assert events.read(log) == []
    events.record(log, "prepared", version="3", by="a")
    events.record(log, "forced", version="3", by="b", reason="why")
    got = events.read(log)
    assert [e["action"] for e in got] == ["prepared", "forced"]
    assert got[1]["reason"] == "why" and got[0]["at"] <= got[1]["at"]
    assert events.read(log, last=1) == got[1:]
    assert (log.stat().st_mode & 0o777) == 0o640
