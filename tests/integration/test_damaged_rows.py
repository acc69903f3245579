"""Damaged rows of the embedded log (a column edited behind the ledger's back) are parked,
naming the column and its problem, by every path of the projector, and never stop other
customers' records (issue 15, item 7). Runs against SQLite and PostgreSQL view stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from application.wiring import open_log, open_store
from cli import main
from consumers.projector import Projector
from ledger.codec import parse_event
from ledger.generate import generated
from ledger.settings import Settings
from tests.conftest import StoreUrlFactory

DAMAGE = {
    3: ("event_time = 'yesterday'", "stored column event_time: holds text 'yesterday'"),
    5: ("state = CAST(state AS TEXT)", "stored column state: holds text"),
    7: ("topic = x'00ff'", "stored column topic: holds a blob"),
    8: ("event_time = 999999999999999999", "stored column event_time: 999999999999999999"),
    10: ("recorded_at = 'x'", "stored column recorded_at: holds text 'x'"),
    11: ("event_time = 1.5", "stored column event_time: holds a real 1.5"),
    12: ("originator_id = x'41'", "stored column originator_id: holds a blob"),
    13: ("subject = x'43'", "stored column subject: holds a blob"),
}
"""Position -> (the edit, what the parked record's reason must say)."""


def damaged_and_clean(tmp_path: Path, store_url: StoreUrlFactory) -> tuple[Settings, Settings]:
    """A log whose DAMAGE rows were edited, and a clean log of the other events."""
    events = [parse_event(d) for d in generated(40, 60, seed=11)]
    damaged = Settings(log=f"sqlite:///{tmp_path / 'damaged'}.db", store=store_url("damaged"))
    clean = Settings(log=f"sqlite:///{tmp_path / 'clean'}.db", store=store_url("clean"))
    with open_log(damaged) as log:
        log.append(events)
    with open_log(clean) as log:
        log.append([e for n, e in enumerate(events, start=1) if n not in DAMAGE])
    with sqlite3.connect(tmp_path / "damaged.db") as connection:
        for position, (assignment, _) in DAMAGE.items():
            connection.execute(f"UPDATE touchpoints SET {assignment} WHERE rowid = ?", (position,))
    return damaged, clean


def project(settings: Settings, **options: object) -> None:
    with open_log(settings, create=False) as log:
        store = open_store(settings)
        try:
            Projector(log, store, batch_size=16, **options).catch_up()  # type: ignore[arg-type]
        finally:
            store.close()


def dump(settings: Settings) -> dict[str, list[tuple[object, ...]]]:
    store = open_store(settings)
    try:
        return store.dump()
    finally:
        store.close()


@pytest.mark.parametrize(
    "options",
    [{}, {"validate": True}, {"workers": 2, "parallel_min": 0}],
    ids=["fast-path", "validating", "workers"],
)
def test_damaged_rows_are_parked_naming_the_column_and_the_rest_is_exact(
    tmp_path: Path, store_url: StoreUrlFactory, options: dict[str, object]
) -> None:
    damaged, clean = damaged_and_clean(tmp_path, store_url)
    project(damaged, **options)
    project(clean)
    assert dump(damaged) == dump(clean)
    store = open_store(damaged)
    try:
        letters = {letter.offset: letter for letter in store.dead_letters()}
    finally:
        store.close()
    assert sorted(letters) == sorted(DAMAGE)
    for position, (_, reason) in DAMAGE.items():
        assert reason in letters[position].reason
        assert isinstance(letters[position].raw, bytes)
    with open_log(damaged, create=False) as log:
        store = open_store(damaged)
        try:
            retried = Projector(log, store).retry()
            assert (retried.applied, retried.parked) == (0, len(DAMAGE))
        finally:
            store.close()
    assert dump(damaged) == dump(clean)


def test_project_errors_and_retry_show_any_parked_payload(
    tmp_path: Path, store_url: StoreUrlFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``project errors`` shows a parked row whose payload is text (as an older version
    stored the row with a TEXT state), and ``project retry`` leaves it parked."""
    damaged, _ = damaged_and_clean(tmp_path, store_url)
    project(damaged)
    if damaged.store_url.startswith("sqlite"):
        views = damaged.store_url.removeprefix("sqlite:///")
        with sqlite3.connect(views) as connection:
            changed = connection.execute("UPDATE dead_letters SET raw = CAST(raw AS TEXT)")
            assert changed.rowcount == len(DAMAGE)
    monkeypatch.setenv("LEDGER_LOG", damaged.log_url)
    monkeypatch.setenv("LEDGER_STORE", damaged.store_url)
    runner = CliRunner()
    shown = runner.invoke(main, ["project", "errors"])
    assert shown.exit_code == 0, shown.output
    assert [line.split()[0] for line in shown.stdout.splitlines()] == [
        f"0:{p}" for p in sorted(DAMAGE)
    ]
    as_json = runner.invoke(main, ["project", "errors", "--json"])
    assert as_json.exit_code == 0, as_json.output
    payloads = [orjson.loads(line)["raw"] for line in as_json.stdout.splitlines()]
    assert len(payloads) == len(DAMAGE)
    assert all('"specversion"' in raw for raw in payloads)  # whatever type it was kept as
    retried = runner.invoke(main, ["project", "retry"])
    assert retried.exit_code == 0, retried.output
    assert f"{len(DAMAGE)} still parked" in retried.stdout
