"""The dedupe look-ahead of a group member (consumers/folding.py, ``Folder.look_ahead``): the
store is asked which ids it applied while the records are still being decoded, and the
answer, asked earlier than the fold, must not let an event count twice."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Any

from consumers.folding import Folder, Item
from consumers.store import Seen, ViewBatch
from ledger.codec import parse_event
from ledger.generate import generated
from ledger.log import Position
from projections.fact import content_digest, fact_of
from projections.profile import Profile

EVENTS = [parse_event(d) for d in generated(5, 30)][:3]


class Store:
    """The views' dedupe records as a store holds them, and every lookup asked of it."""

    def __init__(self) -> None:
        self.applied: dict[str, Seen] = {}
        self.asked: list[list[str]] = []

    def seen(self, event_ids: Sequence[str]) -> dict[str, Seen]:
        self.asked.append(list(event_ids))
        return {i: self.applied[i] for i in event_ids if i in self.applied}

    def load_profiles(self, customers: Sequence[str]) -> dict[str, Profile]:
        return {}

    def newest_times(self) -> dict[int, int]:
        return {}


class AtOnce(Executor):
    """Runs what is submitted at once: the answer is the store as it was when asked."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def items() -> list[Item]:
    return [Item(Position(0, n), fact_of(e), None, b"") for n, e in enumerate(EVENTS)]


def seen(item: Item) -> Seen:
    assert item.fact is not None
    return Seen(content_digest(item.fact), 0, item.position.offset, item.fact.micros)


def test_an_id_whose_commit_settled_after_the_lookup_was_asked_is_a_duplicate() -> None:
    store, folder, first = Store(), Folder(Store(), dedupe=True), items()[0]
    folder.views = store
    folder.recent_ids = {first.fact.id: seen(first)}  # type: ignore[union-attr]  # in flight
    folder.look_ahead([e.id for e in EVENTS], AtOnce())  # the store does not hold it yet
    store.applied[first.fact.id] = seen(first)  # type: ignore[union-attr]  # committed...
    folder.recent_ids = {}  # ...and settled: the folder's recent ids are gone
    applied, duplicates = folder.add(ViewBatch(), items())
    assert (applied, duplicates) == (2, 1)
    assert len(store.asked) == 1  # the fold took the answer, asked nothing more


def test_ids_the_headers_did_not_name_are_looked_up_when_folded() -> None:
    store, folder = Store(), Folder(Store(), dedupe=True)
    folder.views = store
    first = items()[0]
    store.applied[first.fact.id] = seen(first)  # type: ignore[union-attr]
    folder.look_ahead([EVENTS[1].id, EVENTS[2].id], AtOnce())
    applied, duplicates = folder.add(ViewBatch(), items())
    assert (applied, duplicates) == (2, 1)
    assert store.asked == [[EVENTS[1].id, EVENTS[2].id], [EVENTS[0].id]]


def test_a_folder_that_forgets_drops_its_look_ahead() -> None:
    """After a failed commit the folder forgets; an answer asked before must not be used
    (another member may have committed those ids since)."""
    store, folder, first = Store(), Folder(Store(), dedupe=True), items()[0]
    folder.views = store
    folder.look_ahead([e.id for e in EVENTS], AtOnce())
    store.applied[first.fact.id] = seen(first)  # type: ignore[union-attr]
    folder.forget()
    applied, duplicates = folder.add(ViewBatch(), items())
    assert (applied, duplicates) == (2, 1)


def test_an_answer_is_used_once() -> None:
    """The answer was for one fold; another member may commit those ids right after."""
    store, folder, first = Store(), Folder(Store(), dedupe=True), items()[0]
    folder.views = store
    folder.look_ahead([e.id for e in EVENTS], AtOnce())
    assert folder.add(ViewBatch(), items()[1:]) == (2, 0)
    store.applied[first.fact.id] = seen(first)  # type: ignore[union-attr]
    assert folder.add(ViewBatch(), items()[:1]) == (0, 1)  # asked again, not the old answer


def test_an_id_applied_earlier_in_the_same_batch_is_a_duplicate() -> None:
    """The answer was asked before this batch applied the id a record further on: the
    batch's own applied ids are looked in too."""
    store, folder, first = Store(), Folder(Store(), dedupe=True), items()[0]
    folder.views = store
    batch = ViewBatch()
    folder.look_ahead([e.id for e in EVENTS], AtOnce())
    assert folder.add(batch, items()[:1]) == (1, 0)
    folder.look_ahead([e.id for e in EVENTS], AtOnce())  # the store has not committed it
    assert folder.add(batch, items()) == (2, 1)
    assert first.fact is not None
    assert first.fact.id in batch.applied_ids
