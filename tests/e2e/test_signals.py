"""SIGINT and SIGTERM, once or several in quick succession to the whole process group, at
seeded random moments: long-running commands stop within seconds with their documented
exit code, print no traceback, and leave the log and the views exact (issue 15, items 6
and 9). The commands run as real processes (``python -m cli``) in sessions of their own,
so that ``os.killpg`` reaches them and their worker processes as a terminal's Ctrl-C,
``timeout`` or a service manager would."""

from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from application.wiring import open_log, open_store
from consumers.projector import Projector
from ledger.codec import parse_event
from ledger.generate import generated
from ledger.settings import Settings
from tests.conftest import wait_until

ROOT = Path(__file__).parents[2]
STOP_SECONDS = 5.0
"""How long a command may take to exit after the first signal (it needs well under one)."""

ONE = [signal.SIGTERM]
CTRL_C = [signal.SIGINT]
SEVERAL = [signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGTERM]


@dataclass
class Stopped:
    code: int
    stdout: str
    stderr: str
    seconds: float


def ledger(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def handles_sigterm(process: subprocess.Popen[bytes]) -> bool:
    """Whether the process has installed its own SIGTERM handler (or has ended)."""
    if process.poll() is not None:
        return True
    try:
        status = Path(f"/proc/{process.pid}/status").read_text()
    except OSError:
        return True
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) >> (signal.SIGTERM - 1) & 1)


def signal_group(
    process: subprocess.Popen[bytes],
    signals: list[signal.Signals],
    delay: float,
    rng: random.Random,
) -> Stopped:
    """Once the command handles signals, wait ``delay`` seconds, send ``signals`` to its
    process group in quick succession, and wait for it to exit."""
    assert wait_until(lambda: handles_sigterm(process), 60), "the command never got ready"
    assert process.poll() is None, process.communicate()
    time.sleep(delay)
    began = time.monotonic()
    for number in signals:
        os.killpg(process.pid, number)
        time.sleep(rng.uniform(0, 0.03))
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"still running 30 s after {signals}: {err.decode()[-2000:]}")
    stopped = Stopped(process.returncode, out.decode(), err.decode(), time.monotonic() - began)
    assert "Traceback" not in stopped.stderr, stopped.stderr
    assert "Error" not in stopped.stderr, stopped.stderr
    assert stopped.seconds < STOP_SECONDS, stopped
    return stopped


def dump(settings: Settings) -> dict[str, list[tuple[object, ...]]]:
    store = open_store(settings)
    try:
        return store.dump()
    finally:
        store.close()


def finish(settings: Settings) -> None:
    """Catch the views up in this process (what the next run does)."""
    with open_log(settings, create=False) as log:
        store = open_store(settings)
        try:
            Projector(log, store, workers=1).catch_up()
        finally:
            store.close()


@dataclass(frozen=True)
class Backlog:
    history: Path
    """JSON Lines of the events."""
    log: Path
    """An embedded log holding them."""
    events: int
    views: dict[str, list[tuple[object, ...]]]
    """The views a clean, uninterrupted projection of the log gives."""


@pytest.fixture(scope="module")
def backlog(tmp_path_factory: pytest.TempPathFactory) -> Backlog:
    """~60,000 events: more than a catch-up needs to start worker processes."""
    folder = tmp_path_factory.mktemp("backlog")
    history = folder / "history.jsonl"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "generate",
            "--customers",
            "4200",
            "--days",
            "200",
            "--seed",
            "5",
            "--out",
            str(history),
        ],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    assert made.returncode == 0
    settings = Settings(log=f"sqlite:///{folder / 'log.db'}", store=f"sqlite:///{folder}/v.db")
    env = {
        "LEDGER_LOG": settings.log_url,
        "LEDGER_STORE": settings.store_url,
        # A session fixture runs before the per-test key folder is set: keep the key store,
        # master key and rejects in this folder, not in ./ledger-data of the checkout.
        "LEDGER_DATA_DIR": str(folder),
        "LEDGER_KEYS": f"sqlite:///{folder / 'keys.db'}",
        "LEDGER_MASTER_KEY_FILE": str(folder / "master.key"),
    }
    imported = subprocess.run(
        [sys.executable, "-m", "cli", "import", str(history)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    with history.open("rb") as lines:
        events = sum(1 for _ in lines)
    assert events > 50_000
    finish(settings)
    return Backlog(history, folder / "log.db", events, dump(settings))


@pytest.fixture
def copy_of(backlog: Backlog, tmp_path: Path) -> Settings:
    shutil.copy(backlog.log, tmp_path / "log.db")
    return Settings(log=f"sqlite:///{tmp_path / 'log.db'}", store=f"sqlite:///{tmp_path}/v.db")


def env_of(settings: Settings) -> dict[str, str]:
    return {"LEDGER_LOG": settings.log_url, "LEDGER_STORE": settings.store_url}


@pytest.mark.parametrize("signals", [ONE, CTRL_C, SEVERAL], ids=["term", "int", "several"])
def test_an_idle_follower_stops_with_exit_0(tmp_path: Path, signals: list[signal.Signals]) -> None:
    settings = Settings(log=f"sqlite:///{tmp_path / 'log.db'}", store=f"sqlite:///{tmp_path}/v.db")
    with open_log(settings) as log:
        log.append([parse_event(d) for d in generated(5, 20, seed=2)])
    rng = random.Random(len(signals))
    follower = ledger("project", "run", "--follow", env=env_of(settings))
    stopped = signal_group(follower, signals, rng.uniform(0.3, 1.0), rng)
    assert stopped.code == 0, stopped
    finish(settings)
    assert dump(settings)["profiles"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_busy_follower_stops_within_seconds_and_counts_every_event_once(
    backlog: Backlog, copy_of: Settings, workers: int
) -> None:
    """Followers stopped again and again while they catch up (with worker processes, the
    batch in hand is thrown away; in one process, it is committed): each exits 0, and the
    views end exactly as an uninterrupted projection's."""
    rng = random.Random(workers)
    for round_ in range(3):
        follower = ledger(
            "project", "run", "--follow", "--batch-size", "2000", "--workers", str(workers),
            env=env_of(copy_of),
        )  # fmt: skip
        signals = [ONE, CTRL_C, SEVERAL][round_]
        stopped = signal_group(follower, signals, rng.uniform(0.05, 1.0), rng)
        assert stopped.code == 0, stopped
    finish(copy_of)
    assert dump(copy_of) == backlog.views


@pytest.mark.parametrize("workers", [1, 2])
def test_an_interrupted_catch_up_exits_128_plus_the_signal(
    backlog: Backlog, copy_of: Settings, workers: int
) -> None:
    rng = random.Random(10 + workers)
    signals = SEVERAL if workers == 2 else ONE
    runner = ledger(
        "project", "run", "--batch-size", "2000", "--workers", str(workers), "--json",
        env=env_of(copy_of),
    )  # fmt: skip
    stopped = signal_group(runner, signals, rng.uniform(0, 0.2), rng)
    assert stopped.code == 128 + signals[0], stopped
    summary = orjson.loads(stopped.stdout)
    assert summary["interrupted"] == signals[0].name
    assert summary["records"] < backlog.events
    assert f"interrupted by {signals[0].name}" in stopped.stderr
    finish(copy_of)
    assert dump(copy_of) == backlog.views


def test_an_interrupted_rebuild_swaps_nothing_in(backlog: Backlog, copy_of: Settings) -> None:
    finish(copy_of)
    live = dump(copy_of)
    rng = random.Random(30)
    rebuilding = ledger(
        "project", "rebuild", "--batch-size", "2000", "--workers", "2", env=env_of(copy_of)
    )
    stopped = signal_group(rebuilding, CTRL_C, rng.uniform(0, 0.2), rng)
    assert stopped.code == 130, stopped
    assert "nothing swapped in" in stopped.stderr
    assert dump(copy_of) == live == backlog.views


def test_an_interrupted_seal_checkpoints_what_it_chained(
    backlog: Backlog, copy_of: Settings, tmp_path: Path
) -> None:
    """Its digesting processes print nothing; what it sealed verifies, and sealing again
    seals the rest."""
    rng = random.Random(40)
    env = {**env_of(copy_of), "LEDGER_AUDIT_STORE": str(tmp_path / "audit.db")}
    sealing = ledger("audit", "seal", "--json", env=env)
    stopped = signal_group(sealing, SEVERAL, rng.uniform(0.3, 0.9), rng)
    first = orjson.loads(stopped.stdout)
    # 0: it finished before the signal; -SIGINT: it finished, printed its report, and the
    # signal reached it on its way out, after its handlers were gone (nothing left to stop).
    finished = stopped.code == 0 or (
        stopped.code == -signal.SIGINT and first["interrupted"] is None
    )
    assert finished or stopped.code == 130, stopped
    assert first["interrupted"] == (None if finished else "SIGINT")
    again = subprocess.run(
        [sys.executable, "-m", "cli", "audit", "seal", "--json"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert first["records"] + orjson.loads(again.stdout)["records"] == backlog.events
    verified = subprocess.run(
        [sys.executable, "-m", "cli", "audit", "verify"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{backlog.events} sealed records" in verified.stdout.decode()


def logged(log: Path) -> int:
    with sqlite3.connect(log) as connection:
        (count,) = connection.execute("SELECT count(*) FROM touchpoints").fetchone()
    return int(count)


@pytest.mark.parametrize("signals", [CTRL_C, SEVERAL], ids=["int", "several"])
def test_an_interrupted_import_counts_every_event_it_appended(
    backlog: Backlog, tmp_path: Path, signals: list[signal.Signals]
) -> None:
    """The summary of an import cut short counts exactly the events in the log; running
    it again appends the rest and nothing twice."""
    rng = random.Random(20 + len(signals))
    settings = Settings(log=f"sqlite:///{tmp_path / 'log.db'}", store=f"sqlite:///{tmp_path}/v.db")
    command = ("import", str(backlog.history), "--batch-size", "2000", "--json")
    importer = ledger(*command, env=env_of(settings))
    stopped = signal_group(importer, signals, rng.uniform(0.1, 0.5), rng)
    assert stopped.code == 128 + signals[0], stopped
    first = orjson.loads(stopped.stdout)
    assert first["interrupted"] is True
    assert 0 < first["accepted"] == first["read"] < backlog.events
    assert logged(tmp_path / "log.db") == first["accepted"]
    again = subprocess.run(
        [sys.executable, "-m", "cli", *command],
        cwd=ROOT,
        env={**os.environ, **env_of(settings)},
        capture_output=True,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    second = orjson.loads(again.stdout)
    assert (second["duplicates"], second["accepted"]) == (
        first["accepted"],
        backlog.events - first["accepted"],
    )
    assert logged(tmp_path / "log.db") == backlog.events


def test_a_kafka_follower_stops_within_seconds_and_counts_every_event_once(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Signalled while it joins its group or while it applies: exit 0 within seconds,
    and the views end exactly as a fresh projection's."""
    settings = kafka_settings().model_copy(update={"store": f"sqlite:///{tmp_path}/v.db"})  # type: ignore[operator]
    fresh = settings.model_copy(update={"store": f"sqlite:///{tmp_path}/fresh.db"})
    events = [parse_event(d) for d in generated(150, 60, seed=4)]
    with open_log(settings) as log:
        log.append(events)
    rng = random.Random(4)
    env = {**env_of(settings), "LEDGER_GROUP_ID": f"g-{rng.random()}"}
    for signals, delay in ((SEVERAL, rng.uniform(0.2, 3.0)), (ONE, rng.uniform(7.0, 9.0))):
        follower = ledger(
            "project", "run", "--follow", "--batch-size", "200", "--workers", "2", env=env
        )
        stopped = signal_group(follower, signals, delay, rng)
        assert stopped.code == 0, stopped
    finish(settings)
    finish(fresh)
    assert dump(settings) == dump(fresh)


def test_an_import_waiting_on_a_silent_pipe_stops(backlog: Backlog, tmp_path: Path) -> None:
    """``ledger import -`` whose producer sent 300 lines and then nothing, keeping the pipe
    open: a signal ends the wait for input, and the 300 lines are in the log and counted."""
    settings = Settings(log=f"sqlite:///{tmp_path / 'log.db'}", store=f"sqlite:///{tmp_path}/v.db")
    reading, writing = os.pipe()
    try:
        importer = subprocess.Popen(
            [sys.executable, "-m", "cli", "import", "-", "--json", "--batch-size", "100"],
            cwd=ROOT,
            env={**os.environ, **env_of(settings)},
            stdin=reading,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        with backlog.history.open("rb") as history:
            os.write(writing, b"".join(itertools.islice(history, 300)))
        try:
            assert wait_until(lambda: logged_or_zero(tmp_path / "log.db") == 300, 60)
            rng = random.Random(50)
            stopped = signal_group(importer, ONE, rng.uniform(0, 0.3), rng)
        finally:
            if importer.poll() is None:
                importer.kill()
                importer.communicate()
    finally:
        os.close(reading)
        os.close(writing)  # only now does the input end
    assert stopped.code == 143, stopped
    summary = orjson.loads(stopped.stdout)
    assert (summary["read"], summary["accepted"], summary["interrupted"]) == (300, 300, True)
    assert logged(tmp_path / "log.db") == 300


def logged_or_zero(log: Path) -> int:
    try:
        return logged(log)
    except sqlite3.Error:
        return 0
