"""serving/background.py, and the decode helper built on it: both halves really run at the
same time, results and exceptions come back to the caller, the side's exception first."""

from __future__ import annotations

import threading

import pytest

from serving.background import Background
from serving.preprocessing import _together


def test_runs_beside_the_caller_and_returns_its_result():
    started = threading.Event()

    def side() -> str:
        started.set()
        return "done"

    task = Background(side)
    # The caller goes on while the side runs (it would never be set if it ran only later).
    assert started.wait(timeout=10)
    assert task() == "done" and task() == "done"


def test_the_side_exception_reaches_the_caller():
    task = Background(lambda: 1 / 0)
    task.wait()  # waiting alone never raises
    with pytest.raises(ZeroDivisionError):
        task()


def test_together_overlaps_and_reports_the_side_failure_first():
    side_started, main_may_end = threading.Event(), threading.Event()

    def main() -> str:
        assert side_started.wait(timeout=10)  # the side runs while main does
        main_may_end.set()
        return "main"

    def side() -> str:
        side_started.set()
        assert main_may_end.wait(timeout=10)
        return "side"

    assert _together(main, side) == ("main", "side")

    def broken_main() -> None:
        raise ValueError("main")

    def broken_side() -> None:
        raise KeyError("side")

    with pytest.raises(KeyError):
        _together(broken_main, broken_side)
    with pytest.raises(ValueError):
        _together(broken_main, lambda: None)
