"""The cycle collector while a group member folds a backlog (consumers/folding.py,
``BulkGarbage``): off during the bulk, survivors frozen every ``SETTLE_EVERY`` records
without a collection (folding makes no cyclic garbage: checked here), what the bulk left
since collected once caught up or leaving, and the collector back as it was."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator, Sequence

import pytest

from consumers.folding import SETTLE_EVERY, BulkGarbage, Folder, item_of_record
from consumers.store import Seen, ViewBatch
from ledger.codec import parse_event
from ledger.confluent_reader import Record
from ledger.generate import generated
from ledger.kafka_binding import to_binary
from projections.profile import Profile


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    """A garbage cycle (only the collector frees it), and a way to see whether it was."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def collector() -> Iterator[None]:
    was = gc.isenabled()
    gc.unfreeze()
    gc.enable()
    yield
    gc.unfreeze()
    if was:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.usefixtures("collector")
def test_bulk_folding_turns_the_collector_off_and_a_follower_turns_it_back_on() -> None:
    garbage = BulkGarbage()
    garbage.folded(5_000, bulk=True)
    assert not gc.isenabled()
    garbage.folded(1_000, bulk=True)
    assert not gc.isenabled()
    garbage.folded(3, bulk=False)  # caught up: a follower's polls
    assert gc.isenabled()
    garbage.folded(5_000, bulk=True)  # behind again
    assert not gc.isenabled()
    garbage.end()
    assert gc.isenabled()


@pytest.mark.usefixtures("collector")
def test_cycles_made_during_the_bulk_are_collected_every_settle() -> None:
    """Worker processes and one-process catch-ups (``collect=True``, the default)."""
    garbage = BulkGarbage()
    garbage.folded(1, bulk=True)
    lost = cycle()
    garbage.folded(SETTLE_EVERY - 2, bulk=True)
    assert lost() is not None  # no collection yet: the collector is off
    garbage.folded(1, bulk=True)  # SETTLE_EVERY records since the last settle
    assert lost() is None
    garbage.end()


@pytest.mark.usefixtures("collector")
def test_a_group_members_bulk_freezes_survivors_every_settle_without_collecting() -> None:
    garbage = BulkGarbage(collect=False)
    garbage.folded(1, bulk=True)
    lost = cycle()
    garbage.folded(SETTLE_EVERY - 2, bulk=True)
    assert gc.get_freeze_count() == 0
    garbage.folded(1, bulk=True)  # SETTLE_EVERY records since the last settle
    assert gc.get_freeze_count() > 0  # out of the collector's sight...
    assert lost() is not None  # ...and not collected (the cost of a cycle: memory)
    garbage.end()
    assert gc.isenabled()


class NoViews:
    def seen(self, event_ids: Sequence[str]) -> dict[str, Seen]:
        return {}

    def load_profiles(self, customers: Sequence[str]) -> dict[str, Profile]:
        return {}

    def newest_times(self) -> dict[int, int]:
        return {}


@pytest.mark.usefixtures("collector")
def test_folding_makes_no_cyclic_garbage() -> None:
    """What lets the bulk freeze without collecting: records of every type decoded from
    Kafka's shape and folded, with copies (duplicates) and records the contract refuses
    (parked with their reasons, exceptions raised and caught on the way), leave no cycle
    for the collector to find."""
    events = [parse_event(d) for d in generated(200, 60)]
    assert len({e.type for e in events}) >= 12
    records = []
    for offset, event in enumerate(events):
        key, value, headers = to_binary(event)
        records.append(Record(key, value, list(headers), offset, 1_700_000_000_000))
    first = records[0]
    assert first.value is not None
    refused = [
        Record(b"c1", b"{not json", [], 1 << 40, 0),
        Record(b"c1", b'{"a":1}', [("ce_type", b"purchase")], (1 << 40) + 1, 0),
        Record(first.key, first.value.replace(b'"', b"'", 2), first.headers, (1 << 40) + 2, 0),
    ]
    folder, batch = Folder(NoViews(), dedupe=True, partition_count=12), ViewBatch()
    gc.collect()
    gc.disable()
    for start in range(0, len(records), 500):
        chunk = records[start : start + 500] + refused + records[start : start + 3]
        folder.add(batch, [item_of_record(0, r) for r in chunk])
    assert len(batch.dead_letters) == 3 * len(range(0, len(records), 500))
    assert len(batch.applied_ids) == len({e.id for e in events})
    assert gc.collect() == 0


@pytest.mark.usefixtures("collector")
@pytest.mark.parametrize("collect", [True, False])
def test_leaving_collects_what_the_bulk_left(collect: bool) -> None:
    garbage = BulkGarbage(collect=collect)
    garbage.folded(10, bulk=True)
    lost = cycle()
    garbage.end()
    assert lost() is None
    assert gc.isenabled()


@pytest.mark.usefixtures("collector")
def test_a_collector_someone_else_turned_off_stays_off() -> None:
    gc.disable()
    garbage = BulkGarbage()
    garbage.folded(SETTLE_EVERY, bulk=True)
    garbage.end()
    assert not gc.isenabled()
    gc.enable()
