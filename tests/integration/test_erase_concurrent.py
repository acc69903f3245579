"""Erasing while the ledger works: during ``project run --follow`` and during an import.
Nothing is lost (every event appended and counted once) and no personal value is left in
clear anywhere (every file of the data dir and of the key store)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from application import privacy, service
from application.wiring import open_keys, open_log, open_store
from ledger.codec import parse_event
from ledger.events import Touchpoint
from ledger.generate import generated
from ledger.log import AppendOutcome, ReadFilter
from ledger.privacy.keystore import WrappedKey
from ledger.settings import Settings
from tests.conftest import wait_until

ROOT = Path(__file__).parents[2]
REQUEST = privacy.ErasureRequest("KVKK Art. 7 request", "REQ-9", "dpo")


def personal_values(documents: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for document in documents:
        data = document["data"]
        found.update(v for v in (data.get("personal") or {}).values() if isinstance(v, str))
        if isinstance(data.get("recipient"), str):
            found.add(data["recipient"])
    return {v for v in found if len(v) >= 6}


def cleartext_in(folders: list[Path], values: set[str]) -> list[str]:
    hits = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix != ".jsonl":  # not the input files
                content = path.read_bytes()
                hits += [f"{path.name}: {v}" for v in values if v.encode() in content]
    return hits


def with_details(documents: list[dict[str, Any]]) -> list[str]:
    return sorted({d["subject"] for d in documents if d["type"] == "customer.details"})


def keys_folder() -> Path:
    return Path(os.environ["LEDGER_MASTER_KEY_FILE"]).parent


def touchpoints_in_views(settings: Settings) -> int:
    with closing(open_store(settings)) as store:
        return sum(sum(p.by_type.values()) for p in store.iter_profiles())


def test_erasing_during_a_follow_loses_nothing_and_leaves_no_cleartext(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    documents = list(generated(80, 120, seed=31))
    first, second = documents[: len(documents) // 2], documents[len(documents) // 2 :]
    with open_log(settings) as log:
        log.append([parse_event(d) for d in first])
    follower = subprocess.Popen(
        [sys.executable, "-m", "cli", "project", "run", "--follow"],
        cwd=ROOT,
        env={**os.environ, "LEDGER_DATA_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        erased = with_details(first)[:6]
        keys = open_keys(settings)
        with open_log(settings) as log:
            for index, customer in enumerate(erased):
                privacy.erase(log, keys, customer, REQUEST)
                part = second[index::6]
                log.append([parse_event(d) for d in part])
        keys.close()
        counted = Counter(d["type"] for d in documents)
        expected = sum(counted.values())
        assert wait_until(lambda: touchpoints_in_views(settings) == expected, 60), (
            touchpoints_in_views(settings),
            expected,
        )
    finally:
        os.killpg(follower.pid, signal.SIGTERM)
        _, errors = follower.communicate(timeout=30)
    assert follower.returncode == 0, errors
    with closing(open_store(settings)) as store:
        for customer in erased:
            found = store.profile(customer)
            assert found is not None
            assert found.state["details"]["name"][0] == "[erased]", customer
    with open_log(settings) as log:
        records = privacy.erasures(log)
    assert sorted(r.customer for r in records) == sorted(erased)
    assert cleartext_in([tmp_path, keys_folder()], personal_values(documents)) == []


def test_erasing_during_an_import_loses_nothing_and_leaves_no_cleartext(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    history = tmp_path / "history.jsonl"
    with history.open("wb") as out:
        service.write_generated(out, customers=400, days=120, seed=37, start=None)
    documents = [orjson.loads(line) for line in _lines(history)]
    outcome: dict[str, Any] = {}

    def run_import() -> None:
        try:
            with open_log(settings) as log, history.open("rb") as source:
                outcome["summary"] = service.import_file(
                    log, source, "jsonl", tmp_path / "rejects" / "r.jsonl", batch_size=300
                )
        except Exception as exc:  # said by the assertion below, not lost in a thread
            outcome["error"] = exc

    importer = threading.Thread(target=run_import)
    importer.start()
    keys = open_keys(settings)
    erased: list[str] = []
    candidates = with_details(documents[: len(documents) // 3])
    with open_log(settings) as log:
        while importer.is_alive() and len(erased) < 5:
            for customer in candidates:
                details = ReadFilter(customer=customer, types=frozenset({"customer.details"}))
                if any(True for _ in log.read(None, details)):  # imported: erase it now
                    privacy.erase(log, keys, customer, REQUEST)
                    erased.append(customer)
                    candidates.remove(customer)
                    break
            time.sleep(0.01)
    importer.join()
    keys.close()
    assert "error" not in outcome, f"the import failed: {outcome.get('error')!r}"
    summary = outcome["summary"]
    assert erased, "the import ended before any erasure: make it longer"
    assert (summary.accepted, summary.rejected, summary.failed) == (len(documents), 0, None)
    with open_log(settings) as log:
        stored = [r.event for r in log.read() if r.event is not None]
        assert len(stored) == len(documents) + len(erased)
        # What was stored before each erasure now reads as erased.
        revealer = privacy.Revealer(open_keys(settings))
        for customer in erased:
            first = next(
                e
                for e in stored
                if e.subject == customer and e.type == "customer.details" and e.data.personal.name
            )
            assert revealer.event(first)["data"]["personal"]["name"] == "[erased]"
    assert cleartext_in([tmp_path, keys_folder()], personal_values(documents)) == []


def details_of(customer: str, name: str, at: str) -> Touchpoint:
    return parse_event(
        {
            "specversion": "1.0",
            "id": f"{customer}-{name}".replace(" ", "-"),
            "source": "crm",
            "type": "customer.details",
            "subject": customer,
            "time": at,
            "data": {"personal": {"name": name}},
        }
    )


def names_of(settings: Settings, customer: str) -> list[str]:
    """``customer``'s names as stored, in log order, opened where their key still is."""
    revealer = privacy.Revealer(open_keys(settings))
    with open_log(settings) as log:
        where = ReadFilter(customer=customer, types=frozenset({"customer.details"}))
        return [
            revealer.event(r.event)["data"]["personal"]["name"]
            for r in log.read(None, where)
            if r.event is not None
        ]


@pytest.mark.parametrize("how", ["erase", "erase --due"])
def test_an_event_appended_while_its_customer_is_erased_is_erased_too(
    tmp_path: Path, how: str
) -> None:
    """Another service appends an event of the customer after the erasure destroyed their
    key and before it recorded ``customer.erased``: that event gets a new key, and sits
    before the erasure in the log. It must read as erased; one appended after the erasure
    (the customer came back) must not."""
    settings = Settings(data_dir=tmp_path)
    with open_log(settings) as log:
        log.append([details_of("C1", "Ada Lovelace", "2026-01-01T10:00:00Z")])
        recording = log.append

        def another_service_meanwhile(events: Sequence[Touchpoint]) -> list[AppendOutcome]:
            if any(e.type == "customer.erased" for e in events):
                with open_log(Settings(data_dir=tmp_path)) as other:
                    other.append([details_of("C1", "Ada Byron", "2026-01-02T10:00:00Z")])
            return recording(events)

        log.append = another_service_meanwhile  # type: ignore[method-assign]
        keys = open_keys(settings)
        if how == "erase":
            erased = [privacy.erase(log, keys, "C1", REQUEST)]
        else:
            erased = privacy.erase_many(log, keys, ["C1"], REQUEST, batch_size=100)
        log.append = recording  # type: ignore[method-assign]
        log.append([details_of("C1", "Ada King", "2026-01-03T10:00:00Z")])
    assert [e.keys_destroyed for e in erased] == [1]  # as recorded; the late key went after
    assert names_of(settings, "C1") == ["[erased]", "[erased]", "Ada King"]


def test_a_key_backup_restored_while_its_customer_is_erased_stays_erased(
    tmp_path: Path,
) -> None:
    """``keys restore`` reads the erasures, then puts the keys back: a customer erased in
    between must not get their key back."""
    settings = Settings(data_dir=tmp_path)
    with open_log(settings) as log:
        log.append(
            [
                details_of("C1", "Ada Lovelace", "2026-01-01T10:00:00Z"),
                details_of("C2", "Grace Hopper", "2026-01-01T10:00:00Z"),
            ]
        )
    keys = open_keys(settings)
    backup = tmp_path / "keys.json"
    privacy.keys_backup(keys, backup)
    putting_back = keys.restore

    def erased_meanwhile(rows: Iterable[WrappedKey]) -> int:
        with open_log(settings) as log:
            privacy.erase(log, open_keys(settings), "C1", REQUEST)
        return putting_back(rows)

    keys.restore = erased_meanwhile  # type: ignore[method-assign]
    with open_log(settings) as log:
        restored, skipped = privacy.keys_restore(log, keys, backup)
    assert (restored, skipped) == (1, 1)
    assert names_of(settings, "C1") == ["[erased]"]
    assert names_of(settings, "C2") == ["Grace Hopper"]


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]
