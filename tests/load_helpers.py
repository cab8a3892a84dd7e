"""Load for the zero-downtime tests: client threads sending requests in a loop, each
answer recorded with the model version it names (no test logic here)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests

# One request: (HTTP status or the exception's name, version named by the answer or "").
Send = Callable[[requests.Session, int], tuple[object, str]]


class Load:
    """``clients`` threads calling ``send`` until stopped, ``pause_s`` apart; results (time
    sent, status, version), in the order the answers came."""

    def __init__(self, send: Send, clients: int = 4, pause_s: float = 0.0):
        self.send, self.clients, self.pause_s = send, clients, pause_s
        self.results: list[tuple[float, object, str]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(clients)]

    def client(self, i: int) -> None:
        session = requests.Session()
        n = i
        while not self.stopping.is_set():
            sent = time.monotonic()
            try:
                status, version = self.send(session, n)
            except (requests.RequestException, ValueError, KeyError, IndexError) as exc:
                # an answer without its version counts as failed too
                status, version = type(exc).__name__, ""
            n += self.clients
            with self.lock:
                self.results.append((sent, status, version))
            self.stopping.wait(self.pause_s)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=180)

    def count(self) -> int:
        with self.lock:
            return len(self.results)

    def latest(self) -> str:
        with self.lock:
            return self.results[-1][2] if self.results else ""

    def failures(self) -> list[tuple[float, object, str]]:
        with self.lock:
            return [r for r in self.results if r[1] != 200]


def runs(values: list) -> list[tuple[str, int]]:
    """Run-length encoding: [(value, how many in a row)]."""
    out: list[tuple[str, int]] = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1] = (v, out[-1][1] + 1)
        else:
            out.append((v, 1))
    return out


def wait_for(cond: Callable[[], bool], procs: list, deadline_s: float, what: str,
             tail: Callable[[object], str] = str) -> None:
    """Wait until ``cond()``; fail when one of ``procs`` exits or the deadline passes
    (``tail(proc)`` says what it logged)."""
    end = time.monotonic() + deadline_s
    while not cond():
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"a process exited while waiting for {what}:\n"
                                     f"{tail(proc)}")
        if time.monotonic() > end:
            raise AssertionError(f"no {what} within {deadline_s} s:\n"
                                 + "\n".join(tail(p) for p in procs))
        time.sleep(0.2)
