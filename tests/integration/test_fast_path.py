"""The projectors' fast path over the embedded log agrees with the validating path.

Records the embedded log stored were validated at append time, so projectors decode only
what they use (:func:`fact_from_stored`). These tests hold that shortcut to the full
decoder: same facts for every record, old schema versions upcast the same way, and bytes
that are not what the ledger writes fall back to validation and are parked with its reason.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from consumers.folding import read_items
from consumers.projector import Projector
from consumers.store import SQLiteViewStore
from ledger.codec import event_from_json, parse_event
from ledger.generate import generated
from ledger.sqlite_log import SQLiteLog
from projections.fact import fact_from_stored, fact_of


def fill(path: Path, customers: int = 40) -> int:
    events = [parse_event(d) for d in generated(customers, 90, seed=8)]
    with SQLiteLog(path) as log:
        log.append(events)
    return len(events)


def test_every_stored_record_gives_the_fact_of_its_validated_event(tmp_path: Path) -> None:
    count = fill(tmp_path / "log.db")
    with SQLiteLog(tmp_path / "log.db", create=False) as log:
        stored = list(log.read_stored())
    assert len(stored) == count
    for record in stored:
        assert fact_from_stored(record) == fact_of(event_from_json(record.document))
    assert {r.type for r in stored} >= {"touchpoint.purchase", "feedback.given", "consent.given"}


def test_an_older_schema_version_is_upcast_on_the_fast_path_too(tmp_path: Path) -> None:
    fill(tmp_path / "log.db")
    with sqlite3.connect(tmp_path / "log.db") as connection:
        position, state = connection.execute(
            "SELECT position, state FROM touchpoints WHERE topic = 'feedback.given' LIMIT 1"
        ).fetchone()
        document = orjson.loads(state)
        # As a version-1 record looks: no scale (CSAT was the only one), no dataschema.
        document["data"].pop("scale")
        document["data"]["score"] = 4
        document.pop("dataschema")
        connection.execute(
            "UPDATE touchpoints SET state = ? WHERE position = ?",
            (orjson.dumps(document), position),
        )
    with SQLiteLog(tmp_path / "log.db", create=False) as log:
        record = next(r for r in log.read_stored() if r.position.offset == position)
    fast = fact_from_stored(record)
    assert fast.data["scale"] == "csat"
    assert fast == fact_of(event_from_json(record.document))


def test_bytes_the_ledger_would_not_write_are_parked_with_the_validators_reason(
    tmp_path: Path,
) -> None:
    count = fill(tmp_path / "log.db")
    broken = {
        3: b"\x00not json",
        7: b'{"id": 1}',
        11: None,  # a newer schema version than this ledger knows
    }
    with sqlite3.connect(tmp_path / "log.db") as connection:
        for position, state in broken.items():
            if state is None:
                (original,) = connection.execute(
                    "SELECT state FROM touchpoints WHERE position = ?", (position,)
                ).fetchone()
                document = orjson.loads(original)
                document["dataschema"] = document["dataschema"].rsplit(":", 1)[0] + ":v9"
                state = orjson.dumps(document)
            connection.execute(
                "UPDATE touchpoints SET state = ? WHERE position = ?", (state, position)
            )
    with SQLiteLog(tmp_path / "log.db", create=False) as log:
        items = list(read_items(log, {}))
        store = SQLiteViewStore(tmp_path / "views.db", "embedded")
        report = Projector(log, store, batch_size=20).catch_up()
        letters = store.dead_letters()
        store.close()
    assert [i.position.offset for i in items if i.fact is None] == sorted(broken)
    reasons = {letter.offset: letter.reason for letter in letters}
    assert sorted(reasons) == sorted(broken)
    assert reasons[3].startswith("(event): not valid JSON")
    assert reasons[7].startswith("type: required")
    assert "newer than this ledger knows" in reasons[11]
    assert (report.applied, report.parked) == (count - len(broken), len(broken))


def test_the_validating_path_can_be_forced(tmp_path: Path) -> None:
    fill(tmp_path / "log.db")
    with sqlite3.connect(tmp_path / "log.db") as connection:
        # Well-formed JSON that the fast path takes at its word, but the contract forbids.
        (state,) = connection.execute(
            "SELECT state FROM touchpoints WHERE topic = 'touchpoint.purchase' LIMIT 1"
        ).fetchone()
        document = orjson.loads(state)
        document["data"]["amount"] = "-5.00"
        connection.execute(
            "UPDATE touchpoints SET state = ? WHERE state = ?", (orjson.dumps(document), state)
        )
    with SQLiteLog(tmp_path / "log.db", create=False) as log:
        trusted = [i for i in read_items(log, {}) if i.fact is None]
        validated = [i for i in read_items(log, {}, validate=True) if i.fact is None]
        store = SQLiteViewStore(tmp_path / "views.db", "embedded")
        report = Projector(log, store, validate=True).catch_up()
        store.close()
    assert trusted == []
    assert len(validated) == 1
    assert validated[0].error is not None
    assert validated[0].error.startswith("data.amount:")
    assert report.parked == 1
