"""Projectors against real logs and real view stores (SQLite and PostgreSQL): exactly once.

Every test here runs once per store kind; the stores must give identical results.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaProducer

from application.wiring import open_log, open_store
from consumers.folding import PoisonEvent, RunReport
from consumers.projector import Projector, rebuild
from ledger.codec import parse_event
from ledger.events import IDENTITY_TYPES, Touchpoint, TouchpointEvent
from ledger.generate import generated
from ledger.settings import Settings
from projections import frequency, profile
from tests.conftest import StoreUrlFactory, applied_events, wait_until

SettingsFor = Callable[[str], Settings]


def history(customers: int = 60, days: int = 120, seed: int = 3) -> list[TouchpointEvent]:
    return [parse_event(d) for d in generated(customers, days, seed)]


def dump(settings: Settings) -> dict[str, list[tuple[object, ...]]]:
    """The view rows, sorted (dedupe and tracking tables aside)."""
    store = open_store(settings)
    try:
        return store.dump()
    finally:
        store.close()


def project(settings: Settings, batch_size: int = 500) -> None:
    with open_log(settings, create=False) as log:
        store = open_store(settings)
        try:
            Projector(log, store, batch_size=batch_size).catch_up()
        finally:
            store.close()


@pytest.fixture
def settings_for(tmp_path: Path, store_url: StoreUrlFactory) -> SettingsFor:
    """Settings with a fresh embedded log and a fresh view store (SQLite or PostgreSQL)."""

    def make(name: str = "a") -> Settings:
        return Settings(log=f"sqlite:///{tmp_path / name}-log.db", store=store_url(name))

    return make


@pytest.fixture
def kafka_settings_for(
    kafka_settings: Callable[[], Settings], store_url: StoreUrlFactory
) -> SettingsFor:
    def make(name: str = "k") -> Settings:
        return kafka_settings().model_copy(update={"store": store_url(name)})

    return make


def test_views_equal_the_pure_projections(settings_for: SettingsFor) -> None:
    settings = settings_for("a")
    events = history()
    with open_log(settings) as log:
        log.append(events)
        # The views fold the events as stored: personal values encrypted (the same bytes
        # again: the nonces are synthetic).
        events = list(log.protected(events))
    project(settings, batch_size=97)
    by_customer: dict[str, list[TouchpointEvent]] = defaultdict(list)
    for event in events:
        by_customer[event.subject].append(event)
    store = open_store(settings)
    try:
        for customer, theirs in by_customer.items():
            assert store.profile(customer) == profile.replay(customer, theirs)
        expected: Counter[tuple[str, ...]] = Counter()
        for (customer, channel, direction, purpose, _), n in frequency.replay(events).items():
            expected[(customer, channel, direction, purpose)] += n
        got: Counter[tuple[str, ...]] = Counter()
        for customer in by_customer:
            for key, n in store.contacts(customer, frequency.Window(0, 10**12)).items():
                got[(customer, *key)] += n
        assert got == expected
    finally:
        store.close()


def test_batch_size_does_not_matter_and_a_second_run_applies_nothing(
    settings_for: SettingsFor,
) -> None:
    events = history()
    dumps = []
    for name, size in (("one", 1), ("seven", 7), ("big", 5000)):
        settings = settings_for(name)
        with open_log(settings) as log:
            log.append(events)
        project(settings, batch_size=size)
        with open_log(settings, create=False) as log:
            store = open_store(settings)
            report = Projector(log, store).catch_up()
            store.close()
        assert (report.records, report.applied) == (0, 0)
        dumps.append(dump(settings))
    assert dumps[0] == dumps[1] == dumps[2]
    assert dumps[0]["profiles"]


def test_kafka_and_the_embedded_log_give_identical_views(
    settings_for: SettingsFor, kafka_settings_for: SettingsFor
) -> None:
    events = history()
    embedded, kafka = settings_for("e"), kafka_settings_for("k")
    for settings in (embedded, kafka):
        with open_log(settings) as log:
            log.append(events)
        project(settings)
    assert dump(embedded) == dump(kafka)


def test_republished_events_never_change_the_views(kafka_settings_for: SettingsFor) -> None:
    events = history()
    clean, noisy = kafka_settings_for("c"), kafka_settings_for("n")
    with open_log(clean) as log:
        log.append(events)
    rng = random.Random(4)
    with open_log(noisy) as log:
        for start in range(0, len(events), 100):
            chunk = events[start : start + 100]
            log.append(chunk)
            log.append(rng.sample(chunk, len(chunk) // 2))  # re-published in later batches
    project(clean, batch_size=150)
    project(noisy, batch_size=150)
    assert dump(clean) == dump(noisy)


def test_poison_records_are_parked_and_everything_elseapplied_events(
    kafka_settings_for: SettingsFor, kafka_bootstrap: str
) -> None:
    settings = kafka_settings_for("p")
    events = history(customers=20)
    with open_log(settings) as log:
        log.append(events[:50])
        topic = log.topic  # type: ignore[attr-defined]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(topic, b"\x00not json", b"C0000001", [("ce_type", b"touchpoint.sms")])
    producer.flush()
    producer.close()
    with open_log(settings) as log:
        log.append(events[50:])
    with open_log(settings) as log:
        store = open_store(settings)
        with pytest.raises(PoisonEvent, match="data: the record value is not JSON"):
            Projector(log, store, batch_size=1000, on_error="stop").catch_up()
        assert store.counts()["profiles"] == 0  # the batch holding it was not committed
        report = Projector(log, store, batch_size=1000).catch_up()
        letters = store.dead_letters()
        store.close()
    assert (report.applied, report.parked) == (len(events), 1)
    assert [(d.raw, d.reason.split(":")[0]) for d in letters] == [(b"\x00not json", "data")]


def test_follow_applies_new_events_and_stops_cleanly(settings_for: SettingsFor) -> None:
    settings = settings_for("f")
    events = history(customers=30)
    with open_log(settings) as log:
        log.append(events[:100])
    log = open_log(settings, create=False)
    store = open_store(settings)
    stop = threading.Event()
    projector = Projector(log, store, batch_size=50)
    follower = threading.Thread(target=projector.follow, args=(stop, 0.05))
    follower.start()
    try:
        with open_log(settings) as writer:
            writer.append(events[100:])
        wait_until(lambda: applied_events(settings) == len(events), 20)
    finally:
        stop.set()
        follower.join(10)
    assert not follower.is_alive()
    assert applied_events(settings) == len(events)
    store.close()
    log.close()


def _run_projector(
    settings: Settings, batch_size: int, workers: int = 1
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LEDGER_LOG": settings.log_url,
        "LEDGER_STORE": settings.store_url,
        "LEDGER_WORKERS": str(workers),
    }
    command = [sys.executable, "-m", "cli", "project", "run", "--batch-size", str(batch_size)]
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).parents[2],
    )


def _position(settings: Settings) -> int:
    """How many records of the embedded log the views of ``settings`` hold (0 before the
    first commit, or while a run is creating the store)."""
    try:
        store = open_store(settings)
    except Exception:  # the projector may be creating the store right now
        return 0
    try:
        return max(store.positions([0]).get(0, 1) - 1, 0)
    except Exception:
        return 0
    finally:
        store.close()


def at_once(*runs: Callable[[], None], seconds: float = 300) -> None:
    """Run each function on its own thread, all at the same time, and wait for them."""
    threads = [threading.Thread(target=run) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds)


def kill_until_it_finishes(
    start: Callable[[], subprocess.Popen[bytes]],
    rng: random.Random,
    timing: Callable[[], subprocess.Popen[bytes]],
    progress: tuple[Callable[[], int], int] | None = None,
) -> int:
    """Start a projector process, SIGKILL it after a random pause, and again, until one run
    ends on its own (successfully). Returns how many runs were killed.

    ``timing`` starts the same work on a scratch store; it runs to its end first, and each
    pause is a random 8-30 % of its time, so that runs are cut part-way on a fast
    machine and a slow one alike. Pauses grow with every kill (a run that is killed
    before its first commit makes no progress), so the loop ends.

    With ``progress`` (how far the views are, and where the end is), each of the first
    three runs is also killed once it has gone a random 10-30 % of the way left: the timing
    run's pace says little when other work on the machine starts or stops meanwhile, and a
    run that outlasts its pause would end the test with too few kills."""
    began = time.monotonic()
    assert timing().wait(600) == 0
    whole = time.monotonic() - began
    for kills in range(100):
        process = start()
        pause = rng.uniform(0.08, 0.3) * whole * (1 + kills / 6)
        if progress is None or kills >= 3:
            time.sleep(pause)
        else:
            done, end = progress
            at = done()
            target, deadline = at + rng.uniform(0.1, 0.3) * (end - at), time.monotonic() + pause
            while time.monotonic() < deadline and process.poll() is None and done() < target:
                time.sleep(0.05)
        if process.poll() is not None:
            assert process.returncode == 0
            return kills
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    pytest.fail("the projector never finished")


def test_exactly_once_when_the_projector_is_killed_at_random_points(
    settings_for: SettingsFor,
) -> None:
    """A 200,000-event run of the real CLI (folding in its own process), SIGKILLed at
    random moments until one run gets to the end on its own: the views must equal those of
    a clean run, row for row, identity events in the stream included (links, merges and
    unmerges: a tenth of the customers known to several systems). (With worker processes:
    tests/integration/test_parallel.py.)"""
    generator = generated(12_000, 365, seed=17, identities=0.1)
    events = [parse_event(d) for d in itertools.islice(generator, 200_000)]
    assert len(events) == 200_000
    identity_events = sum(e.type in IDENTITY_TYPES for e in events)
    assert identity_events > 1000
    clean, killed = settings_for("clean"), settings_for("killed")
    for settings in (clean, killed):
        with open_log(settings) as log:
            for start in range(0, len(events), 20_000):
                log.append(events[start : start + 20_000])
    project(clean, batch_size=5000)
    scratch = settings_for("scratch").model_copy(update={"log": killed.log_url})
    open_store(killed).close()  # its tables, before the runs and the progress polls start
    kills = kill_until_it_finishes(
        lambda: _run_projector(killed, batch_size=2000),
        random.Random(11),
        lambda: _run_projector(scratch, batch_size=2000),
        progress=(lambda: _position(killed), len(events)),
    )
    assert kills >= 3, f"only {kills} kills: too few events to interrupt the run"
    assert dump(killed) == dump(clean)
    assert len(dump(killed)["identity_events"]) == identity_events
    assert applied_events(killed) + identity_events == len(events)  # profiles hold touchpoints


def test_reading_views_before_any_run_is_empty_not_an_error(settings_for: SettingsFor) -> None:
    store = open_store(settings_for("empty"))
    try:
        assert store.profile("C1") is None
        assert store.customers(datetime.now(UTC)) == []
        assert store.dead_letters() == []
    finally:
        store.close()


def test_two_projectors_on_one_store_at_once_count_every_event_once(
    settings_for: SettingsFor,
) -> None:
    """An operator starts the projector twice: overlapping batches must not double-count."""
    settings, clean = settings_for("twice"), settings_for("once")
    events = history(customers=200, days=150)
    for target in (settings, clean):
        with open_log(target) as log:
            log.append(events)
    project(clean)
    reports = []

    def run() -> None:
        with open_log(settings, create=False) as log:
            store = open_store(settings)
            try:
                reports.append(Projector(log, store, batch_size=40).catch_up())
            finally:
                store.close()

    at_once(run, run)
    assert len(reports) == 2
    assert sum(r.applied for r in reports) == len(events)
    assert dump(settings) == dump(clean)


def test_retry_applies_parked_records_after_a_fix(
    settings_for: SettingsFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clean = settings_for("fixme"), settings_for("clean")
    events = history(customers=40)
    for target in (settings, clean):
        with open_log(target) as log:
            log.append(events)
    project(clean)
    victim = events[0].subject
    real_apply = profile.apply

    def buggy(state: profile.Profile, event: TouchpointEvent) -> profile.Profile:
        if event.subject == victim:
            raise RuntimeError("a bug in the projection")
        return real_apply(state, event)  # type: ignore[arg-type]

    monkeypatch.setattr(profile, "apply", buggy)
    project(settings, batch_size=100)
    store = open_store(settings)
    try:
        parked = store.dead_letters()
        assert len(parked) == sum(1 for e in events if e.subject == victim)
        assert all("a bug in the projection" in letter.reason for letter in parked)
        assert store.profile(victim) is None
        monkeypatch.setattr(profile, "apply", real_apply)  # the fix is deployed
        with open_log(settings, create=False) as log:
            report = Projector(log, store).retry()
            again = Projector(log, store).retry()
        assert (report.applied, report.parked) == (len(parked), 0)
        assert store.dead_letters() == []
        assert (again.records, again.applied) == (0, 0)
    finally:
        store.close()
    assert dump(settings) == dump(clean)


def test_a_running_projector_reloads_after_a_retry_instead_of_overwriting_it(
    settings_for: SettingsFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clean = settings_for("live"), settings_for("clean")
    events = history(customers=10)
    half = len(events) // 2
    for target in (settings, clean):
        with open_log(target) as log:
            log.append(events)
    project(clean)
    victim = events[0].subject
    real_apply = profile.apply

    def buggy(state: profile.Profile, event: TouchpointEvent) -> profile.Profile:
        if event.subject == victim and event.id == events[0].id:
            raise RuntimeError("a bug")
        return real_apply(state, event)  # type: ignore[arg-type]

    with open_log(settings, create=False) as log:
        live_store = open_store(settings)
        live = Projector(log, live_store, batch_size=half)
        monkeypatch.setattr(profile, "apply", buggy)
        first = list(log.read())[:half]
        live.apply(first, RunReport())
        monkeypatch.setattr(profile, "apply", real_apply)
        retry_store = open_store(settings)
        Projector(log, retry_store).retry()  # changes the victim's profile behind `live`
        retry_store.close()
        report = live.catch_up()  # its cached victim profile is stale: it must reload
        live_store.close()
    assert report.conflicts >= 1
    assert dump(settings) == dump(clean)


def test_rebuild_keeps_the_live_views_readable_then_swaps_in_correct_ones(
    settings_for: SettingsFor,
) -> None:
    settings, clean = settings_for("rebuild"), settings_for("clean")
    events = history()
    for target in (settings, clean):
        with open_log(target) as log:
            log.append(events)
    project(clean)
    project(settings)
    store = open_store(settings)
    try:
        slots = store.recorder.tables["contact_slots"]
        store.recorder.run([(f"UPDATE {slots} SET n = n + 100", ())])  # a damaged view
        damaged = store.dump()
        assert damaged != dump(clean)
        with open_log(settings, create=False) as log:
            fresh = store.rebuild_store()
            report = Projector(log, fresh).catch_up()
            assert report.applied == len(events)
            assert store.dump() == damaged  # readers still see the live views
            store.swap_in(fresh)
        assert store.dump() == dump(clean)
        assert store.positions([0]) == {0: len(events) + 1}
        with open_log(settings, create=False) as log:
            again = rebuild(log, store)  # a second rebuild finds no leftovers in its way
        assert again.applied == len(events)
        assert store.dump() == dump(clean)
    finally:
        store.close()


def test_a_follower_survives_a_rebuild_and_ends_exact(settings_for: SettingsFor) -> None:
    settings, clean = settings_for("live"), settings_for("clean")
    events = history(customers=120)
    thirds = [
        events[: len(events) // 3],
        events[len(events) // 3 : 2 * len(events) // 3],
        events[2 * len(events) // 3 :],
    ]
    for target in (settings, clean):
        with open_log(target) as log:
            log.append(thirds[0])
    log = open_log(settings, create=False)
    store = open_store(settings)
    stop = threading.Event()
    follower = threading.Thread(
        target=Projector(log, store, batch_size=30).follow, args=(stop, 0.02)
    )
    follower.start()
    try:
        with open_log(settings) as writer:
            writer.append(thirds[1])
            rebuild_store = open_store(settings)
            with open_log(settings, create=False) as reader:
                rebuild(reader, rebuild_store, batch_size=30)
            rebuild_store.close()
            writer.append(thirds[2])
        assert wait_until(lambda: applied_events(settings) == len(events), 30)
    finally:
        stop.set()
        follower.join(10)
        store.close()
        log.close()
    with open_log(clean) as writer:
        writer.append(thirds[1] + thirds[2])
    project(clean)
    assert dump(settings) == dump(clean)


_KAFKA_PROJECTOR = """
import sys
from consumers.projector import Projector
from application.wiring import open_log, open_store
from ledger.settings import Settings
log_url, store_url, workers, batch_size = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
settings = Settings(log=log_url, store=store_url)
with open_log(settings, create=False) as log:
    store = open_store(settings)
    Projector(log, store, batch_size=batch_size, workers=workers).catch_up()
"""


def kafka_projector(settings: Settings, workers: int, batch_size: int) -> subprocess.Popen[bytes]:
    """A projector catching up with a Kafka log in a process of its own."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            _KAFKA_PROJECTOR,
            settings.log_url,
            settings.store_url,
            str(workers),
            str(batch_size),
        ],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def republished(settings: Settings, events: Sequence[Touchpoint], rng: random.Random) -> None:
    """Publish ``events`` in batches of 2,000, each followed by 1,000 repeats of events
    published so far (old and new)."""
    with open_log(settings) as log:
        for start in range(0, len(events), 2000):
            log.append(events[start : start + 2000])
            log.append(rng.sample(events[: start + 2000], 1000))


def test_exactly_once_with_a_duplicate_laden_stream_and_kills(
    kafka_settings_for: SettingsFor,
) -> None:
    """Events re-published in later batches, and the projector SIGKILLed again and again:
    the views must equal those of the same events published once. (With worker processes:
    tests/integration/test_parallel.py.) Identity events (issue 12) are in the stream too."""
    generator = generated(3000, 365, seed=29, identities=0.1)
    events = [parse_event(d) for d in itertools.islice(generator, 40_000)]
    assert any(e.type in IDENTITY_TYPES for e in events)
    clean, noisy = kafka_settings_for("clean"), kafka_settings_for("noisy")
    with open_log(clean) as log:
        log.append(events)
    rng = random.Random(8)
    republished(noisy, events, rng)
    project(clean, batch_size=5000)
    scratch = kafka_settings_for("scratch").model_copy(update={"log": noisy.log_url})
    kills = kill_until_it_finishes(
        lambda: kafka_projector(noisy, workers=1, batch_size=500),
        rng,
        lambda: kafka_projector(scratch, workers=1, batch_size=500),
    )
    assert kills >= 3, f"only {kills} kills: too few records to interrupt the run"
    assert dump(noisy) == dump(clean)
    assert dump(noisy)["identity_events"]
