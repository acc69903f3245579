"""An id seen again on Kafka: the same content is a silent duplicate; other content (another
payload, another customer's key) is parked as a conflict with both versions and their
positions, and every parked record keeps its key, headers and timestamp (issue 11, item 3)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from confluent_kafka import Producer

from application.wiring import open_log, open_store
from cli import main
from consumers.projector import Projector
from consumers.store import Seen, SQLiteViewStore, ViewBatch
from ledger.kafka_log import KafkaLog
from ledger.settings import Settings
from ledger.sqlite_log import SQLiteLog
from tests.builders import touchpoint
from tests.conftest import StoreUrlFactory

AT = "2026-02-01T10:00:00+00:00"


def purchase(event_id: str, customer: str, amount: str) -> object:
    data = {"channel": "web", "order_id": f"O-{event_id}", "amount": amount, "currency": "EUR"}
    return touchpoint("touchpoint.purchase", AT, {**data, "item_count": 1}, customer, event_id)


@pytest.fixture
def settings(
    kafka_settings: Callable[[], Settings], store_url: StoreUrlFactory, tmp_path: Path
) -> Settings:
    return kafka_settings().model_copy(update={"store": store_url("c"), "data_dir": tmp_path})


def test_other_content_under_a_known_id_is_parked_with_both_versions(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = [
        purchase("same", "C1", "10.00"),
        purchase("amount", "C1", "20.00"),
        purchase("customer", "C1", "30.00"),
        purchase("plain", "C2", "5.00"),
    ]
    again = [
        purchase("same", "C1", "10.00"),  # an identical re-publish: silent
        purchase("amount", "C1", "99.00"),  # another payload
        purchase("customer", "C2", "30.00"),  # another customer's key
    ]
    with open_log(settings) as log:
        assert isinstance(log, KafkaLog)
        placed = {o.event_id: o.position for o in log.append(first)}  # type: ignore[arg-type]
        later = {o.event_id: o.position for o in log.append(again)}  # type: ignore[arg-type]
        store = open_store(settings)
        try:
            report = Projector(log, store).catch_up()
            assert (report.applied, report.duplicates, report.parked) == (4, 1, 2)
            letters = {letter.first: letter for letter in store.dead_letters()}
            assert set(letters) == {
                (placed["amount"].partition, placed["amount"].offset),
                (placed["customer"].partition, placed["customer"].offset),
            }
            for event_id in ("amount", "customer"):
                letter = letters[(placed[event_id].partition, placed[event_id].offset)]
                assert (letter.partition, letter.offset) == (
                    later[event_id].partition,
                    later[event_id].offset,
                )
                assert "conflicting duplicate" in letter.reason
                assert letter.key == (b"C1" if event_id == "amount" else b"C2")
                assert ("ce_id", event_id.encode()) in letter.headers
                assert letter.timestamp is not None
            # The first copies won, as on the embedded log holding only them.
            truth_log = SQLiteLog(tmp_path / "truth.db")
            truth_log.append(first)  # type: ignore[arg-type]
            truth = SQLiteViewStore(tmp_path / "truth-views.db", "embedded")
            Projector(truth_log, truth, workers=1).catch_up()
            expected = truth.dump()
            assert store.dump() == expected
            truth.close()
            truth_log.close()
            # A retry reads them again: still conflicts, still parked; nothing applied twice.
            retried = Projector(log, store, workers=1).retry()
            assert (retried.applied, retried.parked) == (0, 2)
            assert len(store.dead_letters()) == 2
            assert store.dump() == expected
        finally:
            store.close()

    monkeypatch.setenv("LEDGER_LOG", settings.log_url)
    monkeypatch.setenv("LEDGER_STORE", settings.store_url)
    shown = CliRunner().invoke(main, ["project", "errors", "--json"])
    assert shown.exit_code == 0, shown.output
    conflicts = {
        (entry := orjson.loads(line))["conflict"]["applied"]["event"]["id"]: entry
        for line in shown.output.splitlines()
    }
    amount, customer = conflicts["amount"], conflicts["customer"]
    assert amount["conflict"]["differs"] == ["data"]
    assert customer["conflict"]["differs"] == ["subject"]
    assert amount["conflict"]["parked"]["event"]["data"]["amount"] == "99.00"
    assert customer["conflict"]["parked"]["event"]["subject"] == "C2"
    assert customer["key"] == "C2"
    assert {"name": "ce_type", "value": "touchpoint.purchase"} in customer["headers"]
    assert customer["position"] == str(later["customer"])
    assert customer["conflict"]["applied_position"] == str(placed["customer"])
    # replay shows each id once, as the views count it, and names the conflicts.
    replayed = CliRunner().invoke(main, ["replay", "--json"])
    assert replayed.exit_code == 3
    events = {(e := orjson.loads(line))["id"]: e for line in replayed.stdout.splitlines()}
    assert sorted(events) == ["amount", "customer", "plain", "same"]
    assert events["amount"]["data"]["amount"] == "20.00"
    assert events["customer"]["subject"] == "C1"
    assert replayed.stderr.count("with other content") == 2
    assert f"at {later['customer']} repeats the id of the record at {placed['customer']}" in (
        replayed.stderr
    )
    text = CliRunner().invoke(main, ["project", "errors"])
    assert "differs: subject" in text.output
    assert f"applied copy at {placed['customer']}" in text.output


def test_a_parked_record_keeps_key_headers_and_timestamp(settings: Settings) -> None:
    with open_log(settings) as log:
        assert isinstance(log, KafkaLog)
        log.ensure_topic()
        producer = Producer({"bootstrap.servers": ",".join(log.target.bootstrap_servers)})
        headers = [("ce_type", b"touchpoint.purchase"), ("trace", b"\xff\x00")]
        producer.produce(log.topic, b'{"not": "a purchase"}', b"C9", headers=headers)
        assert producer.flush(30) == 0
        store = open_store(settings)
        try:
            assert Projector(log, store, workers=1).catch_up().parked == 1
            (letter,) = store.dead_letters()
        finally:
            store.close()
    assert letter.key == b"C9"
    assert letter.headers == (("ce_type", b"touchpoint.purchase"), ("trace", b"\xff\x00"))
    assert letter.raw == b'{"not": "a purchase"}'
    assert letter.timestamp is not None
    assert letter.first is None


def test_a_store_made_before_digests_gains_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "old-views.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE applied_events (event_id TEXT PRIMARY KEY) WITHOUT ROWID")
        old.execute(
            "CREATE TABLE dead_letters (partition INTEGER NOT NULL, offset INTEGER NOT NULL, "
            "raw BLOB NOT NULL, reason TEXT NOT NULL, parked_at INTEGER NOT NULL, "
            "PRIMARY KEY (partition, offset)) WITHOUT ROWID"
        )
        old.execute("INSERT INTO applied_events VALUES ('before')")
        old.execute("INSERT INTO dead_letters VALUES (0, 7, x'00', 'old reason', 0)")
    store = SQLiteViewStore(path, "t")
    try:
        assert store.seen(["before"]) == {"before": Seen(None, None, None)}
        (letter,) = store.dead_letters()
        assert (letter.offset, letter.reason, letter.key, letter.first) == (
            7,
            "old reason",
            None,
            None,
        )
        batch = ViewBatch(applied_ids={"after": Seen(5, 0, 8)}, positions={0: 9})
        store.commit(batch)
        assert store.seen(["before", "after"])["after"] == Seen(5, 0, 8)
    finally:
        store.close()


def test_lookups_of_many_ids_find_exactly_the_applied_ones_whatever_the_ids_hold(
    store_url: StoreUrlFactory, settings: Settings
) -> None:
    """PostgreSQL gets a chunk of ids as one string it splits at line breaks, unless an id
    holds one (ids the contract refuses, from an older store): then as an array. Either
    way exactly the applied ids are found, and a part of an id is not one."""
    store = open_store(settings.model_copy(update={"store": store_url("ids")}))
    try:
        odd = ["line\nbreak", "tab\there", "comma,id", "quote'\"", "back\\slash", "ünï"]
        plain = [f"id-{n}" for n in range(6000)]  # more than one chunk
        applied = {i: Seen(n, 0, n) for n, i in enumerate([*odd, *plain[::2]])}
        store.commit(ViewBatch(applied_ids=applied, positions={0: len(applied)}))
        assert store.seen(plain) == {i: applied[i] for i in plain[::2]}
        asked = [*odd, "line", "break", "tab", "comma", "absent", *plain[:10]]
        assert store.seen(asked) == {i: applied[i] for i in asked if i in applied}
        assert store.seen([""]) == {}
    finally:
        store.close()
