"""Stop requests from signal handlers: they never block, a burst makes one request, and a
waiting loop wakes at once (issue 15, item 9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.stopping import STOP_SIGNALS, SignalStop, exit_code, stop_on_signals


@pytest.fixture(autouse=True)
def handlers_restored() -> Iterator[None]:
    """A requested stop leaves SIGINT/SIGTERM ignored (the command is on its way out): put
    pytest's own handlers back after each test."""
    saved = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


BURST = """
import os, signal, sys, threading
from ledger.stopping import exit_code, stop_on_signals
with stop_on_signals() as stop:
    pid = os.getpid()
    def burst():
        for number in [signal.SIGINT, signal.SIGTERM] * 5000:
            os.kill(pid, number)
    sender = threading.Thread(target=burst)
    sender.start()
    for _ in range(20000):
        stop.wait(0.00001)
    sender.join()
    for _ in range(100):
        stop.wait(0)
    code = exit_code(stop)
print(code)
"""


def test_a_burst_of_signals_while_the_main_thread_waits_never_blocks_the_handler() -> None:
    """10,000 signals from another thread while the main thread sits in ``wait`` in a tight
    loop. A handler that takes a lock (``threading.Event.set``, as before issue 15) deadlocks
    here about one run in three: a second signal handled while the first handler holds the
    lock waits for it forever, and so does every later SIGTERM. The handler must finish."""
    process = subprocess.Popen(
        [sys.executable, "-c", BURST],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("deadlocked in its signal handler")
    assert process.returncode == 0, err
    assert int(out) in (130, 143)  # the first signal handled (pending ones: in number order)


def test_wait_wakes_as_soon_as_a_signal_asks() -> None:
    with stop_on_signals() as stop:
        timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        began = time.monotonic()
        assert stop.wait(30)
        waited = time.monotonic() - began
        timer.join()
    assert waited < 29  # woken by the signal, not by the end of the timeout
    assert exit_code(stop) == 130


def test_handlers_come_back_when_no_stop_was_asked_and_stay_quiet_when_one_was() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
    with stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    # A stopping command ignores the rest of a burst instead of dying half-way.
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    os.kill(os.getpid(), signal.SIGTERM)


def test_a_stop_asked_by_code_is_not_a_signal() -> None:
    stop = SignalStop()
    try:
        assert not stop.wait(0.01)
        stop.set()
        stop.set()
        assert stop.is_set()
        assert stop.wait(0)
        assert exit_code(stop) == 0
    finally:
        stop.close()
