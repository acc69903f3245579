"""The cycle collector while a group member folds a backlog (consumers/folding.py,
``BulkGarbage``): off during the bulk, cycles still collected every ``SETTLE_EVERY``
records, and back as it was once caught up or leaving."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from consumers.folding import SETTLE_EVERY, BulkGarbage


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
    gc.enable()
    yield
    gc.unfreeze()
    if not was:
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
    garbage = BulkGarbage()
    garbage.folded(1, bulk=True)
    lost = cycle()
    garbage.folded(SETTLE_EVERY - 2, bulk=True)
    assert lost() is not None  # no collection yet: the collector is off
    garbage.folded(1, bulk=True)  # SETTLE_EVERY records since the last settle
    assert lost() is None
    garbage.end()


@pytest.mark.usefixtures("collector")
def test_leaving_collects_what_the_bulk_left() -> None:
    garbage = BulkGarbage()
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
