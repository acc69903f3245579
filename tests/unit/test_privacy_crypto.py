"""Sealing personal values: bound to event, customer and field; the same value of the same
field of the same event seals to the same bytes; the contract's personal fields are the
ones sealed; the profile purges them on customer.erased."""

from __future__ import annotations

from typing import Any

from ledger.codec import event_to_dict, event_to_json, parse_event
from ledger.events import EVENT_CLASSES
from ledger.payloads import ERASED
from ledger.privacy.crypto import (
    HASHED_FIELDS,
    PERSONAL_FIELDS,
    UNREADABLE,
    DataKey,
    associated_data,
    needs_sealing,
    reveal_document,
    seal_event,
)
from ledger.schema import event_schema
from projections import profile
from tests.builders import touchpoint

KEY = DataKey("k1", "C1", bytes(range(32)))


def details(event_id: str = "e1", **personal: str) -> Any:
    return parse_event(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "crm",
            "type": "customer.details",
            "subject": "C1",
            "time": "2026-01-02T10:00:00Z",
            "data": {"personal": personal or {"name": "Ada", "email": "ada@example.com"}},
        }
    )


def test_a_sealed_value_opens_only_in_its_own_event_customer_and_field() -> None:
    aad = associated_data("e1", "C1", "personal.name")
    sealed = KEY.seal("Ada Lovelace", aad).model_dump()
    assert KEY.open(sealed, aad) == "Ada Lovelace"
    for other in (
        associated_data("e2", "C1", "personal.name"),
        associated_data("e1", "C2", "personal.name"),
        associated_data("e1", "C1", "personal.email"),
    ):
        assert KEY.open(sealed, other) == UNREADABLE
    flipped = {**sealed, "c": ("B" if sealed["c"][0] == "A" else "A") + sealed["c"][1:]}
    assert KEY.open(flipped, aad) == UNREADABLE


def test_sealing_is_deterministic_per_event_and_fresh_across_events() -> None:
    once, twice = seal_event(details(), KEY), seal_event(details(), KEY)
    assert event_to_json(once) == event_to_json(twice)  # a retried append: the same record
    other = seal_event(details("e2"), KEY)
    assert once.data.personal.name != other.data.personal.name
    assert b"Ada" not in event_to_json(once)
    assert not needs_sealing(once)
    assert needs_sealing(details())


def test_revealing_opens_erases_and_keeps_the_rest() -> None:
    sealed = event_to_dict(seal_event(details(), KEY))
    opened = reveal_document(sealed, {"k1": KEY}.get)
    assert opened["data"]["personal"] == {"name": "Ada", "email": "ada@example.com"}
    gone = reveal_document(sealed, {}.get)
    assert gone["data"]["personal"] == {"name": ERASED, "email": ERASED}
    assert parse_event(gone).data.personal.email == ERASED  # a replay re-imports


def test_the_sealed_fields_are_the_ones_the_contract_marks_personal() -> None:
    """Every field the contract marks personal is sealed (PERSONAL_FIELDS) or, for the
    identifiers of identity links (issue 12), stored as its keyed hash (HASHED_FIELDS)."""
    marked: dict[str, set[str]] = {}

    def walk(node: Any, path: str, kind: str, defs: dict[str, Any]) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                walk(defs[node["$ref"].split("/")[-1]], path, kind, defs)
                return
            if node.get("x-personal-data") and node.get("type") != "object":
                marked.setdefault(kind, set()).add(path)
            for name, inner in (node.get("properties") or {}).items():
                walk(inner, f"{path}.{name}".lstrip("."), kind, defs)
            for inner in node.get("anyOf", []):
                walk(inner, path, kind, defs)

    for kind in EVENT_CLASSES:
        schema = event_schema(kind)
        data = schema["properties"]["data"]
        walk(data, "", kind, schema.get("$defs", {}))
    personal_objects = {"customer.details": {"personal.name", "personal.email", "personal.phone"}}
    for kind, paths in personal_objects.items():
        marked.setdefault(kind, set()).update(paths)
    protected = {kind: set(paths) for kind, paths in PERSONAL_FIELDS.items()}
    protected.update({kind: {path} for kind, path in HASHED_FIELDS.items()})
    assert marked == protected


def test_the_profile_purges_personal_details_on_erasure_in_any_order() -> None:
    sealed = seal_event(details(), KEY)
    erased = touchpoint("customer.erased", "2026-02-01T00:00:00Z", {"reason": "request"})
    late = seal_event(details("e0", name="Old Name"), KEY)  # stated before, arriving later
    for order in ([sealed, erased, late], [erased, late, sealed], [late, sealed, erased]):
        folded = profile.replay("C1", order)
        assert folded.state["details"]["name"][0] == ERASED
        assert folded.state["details"]["email"][0] == ERASED
        assert folded.by_type == {"customer.details": 2}  # the erasure is no touchpoint
