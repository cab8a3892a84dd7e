"""serving/background.py, and the decode helper built on it: both halves really run at the
same time, results and exceptions come back to the caller, the side's exception first."""

from __future__ import annotations

import os
import select
import signal
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


def test_threads_are_reused_not_started_per_call():
    # Starting a thread per call cost ~1 ms under load: 50 calls one after another run on a
    # few pool threads (a call may start a second one while the first is still marking
    # itself idle), never on a thread of their own each.
    threads = {Background(threading.current_thread)() for _ in range(50)}
    assert 1 <= len(threads) <= 3
    assert threading.current_thread() not in threads


def test_a_forked_child_gets_a_working_pool_of_its_own():
    Background(lambda: None)()  # the parent's pool exists and has a thread
    read, write = os.pipe()
    ready: list[int] = []
    pid = os.fork()
    if pid == 0:  # child: the parent's threads are gone; a call must still run
        try:
            os.write(write, b"ok" if Background(lambda: 41 + 1)() == 42 else b"no")
        finally:
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 30)  # a stale pool would hang forever
        assert ready and os.read(read, 2) == b"ok"
    finally:
        if not ready:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)


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
