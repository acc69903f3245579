"""Two operators changing one person at the same moment (``ledger merge`` run twice at
once): each change is checked against the graph and appended in turn, so one is refused
with a reason, and none is told "appended" only for the graph to refuse it afterwards."""

from __future__ import annotations

import uuid
from contextlib import closing
from functools import partial
from pathlib import Path

import pytest

from application import people
from application.identity import IdentityRefused, current_facts, graph_of
from application.wiring import open_log, open_store
from ledger.codec import parse_event
from ledger.log import Appended
from ledger.settings import Settings
from tests.conftest import at_once

CUSTOMERS = ("C0000001", "C0000002", "C0000003")


def purchase(customer: str) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "crm",
        "type": "touchpoint.purchase",
        "subject": customer,
        "time": "2025-05-01T09:30:00+03:00",
        "data": {
            "channel": "web",
            "order_id": f"O{customer}",
            "amount": "1.00",
            "currency": "TRY",
            "item_count": 1,
        },
    }


@pytest.mark.parametrize(
    "merges",
    [
        pytest.param(
            [("C0000001", "C0000002", "C0000002"), ("C0000002", "C0000001", "C0000001")],
            id="a-into-b-and-b-into-a",
        ),
        pytest.param(
            [("C0000003", "C0000001", "C0000001"), ("C0000003", "C0000002", "C0000002")],
            id="one-customer-into-two",
        ),
    ],
)
def test_two_merges_at_once_one_is_appended_the_other_refused(
    tmp_path: Path, merges: list[tuple[str, str, str]]
) -> None:
    for round_ in range(8):
        settings = Settings(data_dir=tmp_path / str(round_))
        with open_log(settings) as log:
            log.append([parse_event(purchase(c)) for c in CUSTOMERS])
        asked = [
            partial(people.merge, settings, a, b, reason="duplicate", survivor=into, at=None)
            for a, b, into in merges
        ]
        outcomes = at_once(asked)
        appended = [o for o in outcomes if isinstance(o, tuple) and isinstance(o[1], Appended)]
        refused = [o for o in outcomes if isinstance(o, IdentityRefused)]
        assert (len(appended), len(refused)) == (1, 1), (round_, outcomes)
        with closing(open_store(settings)) as store, open_log(settings) as log:
            graph = graph_of(current_facts(store, list(CUSTOMERS), log))
        assert graph.refused == [], round_
