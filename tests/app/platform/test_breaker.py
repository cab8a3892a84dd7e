"""app/platform/breaker.py: opens after N failures in a row, lets one call probe after the
cooldown."""

import threading
import time

from app.platform.breaker import Breaker


def test_opens_after_consecutive_failures_only():
    b = Breaker(failures=3, cooldown_s=60)
    for ok in (False, False, True, False, False):  # a success resets the count
        assert b.allow() is None
        b.record(ok)
    assert not b.is_open
    assert b.allow() is None
    b.record(False)
    assert b.is_open
    wait = b.allow()
    assert wait is not None and 1.0 <= wait <= 60


def test_half_open_lets_exactly_one_probe_through():
    b = Breaker(failures=1, cooldown_s=0.2)
    b.record(False)
    assert b.allow() is not None
    time.sleep(0.3)  # past the cooldown
    verdicts: list = []
    threads = [threading.Thread(target=lambda: verdicts.append(b.allow())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verdicts.count(None) == 1  # one probe, seven refused
    b.record(True)  # the probe succeeded: closed again
    assert b.allow() is None and not b.is_open


def test_failed_probe_opens_it_again():
    b = Breaker(failures=2, cooldown_s=0.1)
    b.record(False)
    b.record(False)
    time.sleep(0.2)
    assert b.allow() is None
    b.record(False)
    assert b.is_open and b.allow() is not None


def test_a_probe_that_never_reports_expires():
    b = Breaker(failures=1, cooldown_s=0.1)
    b.record(False)
    time.sleep(0.2)
    assert b.allow() is None  # the probe's request dies before calling the server
    assert b.allow() is not None  # meanwhile others are refused...
    time.sleep(0.2)
    assert b.allow() is None  # ...but not forever


def test_a_good_ping_closes_it_after_the_cooldown_only():
    b = Breaker(failures=1, cooldown_s=0.2)
    b.record(False)
    b.recovered()  # the server answers its ping, but predictions may still hang
    assert b.is_open and b.allow() is not None
    time.sleep(0.3)
    b.recovered()
    assert [b.allow() for _ in range(4)] == [None] * 4
