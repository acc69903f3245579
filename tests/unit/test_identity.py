"""The identity graph (pure fold), identifiers' normal forms and composed people: no I/O."""

from __future__ import annotations

import pytest

from ledger.identifiers import (
    InvalidIdentifier,
    check_subject,
    identifier_key,
    kind_of,
    parse_identifier,
)
from projections.identity import (
    LINKED,
    MERGED,
    UNLINKED,
    UNMERGED,
    IdentityFact,
    IdentityGraph,
    apply,
    replay,
)
from projections.person import combine, derive_consent
from projections.profile import Profile

DAY = 86_400_000_000


def fact(n: int, kind: str, customer: str, other: str, day: int) -> IdentityFact:
    return IdentityFact(f"e{n:03d}", kind, customer, other, day * DAY, "why")


# -- identifiers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "key"),
    [
        ("phone", "+90 555 111 22 33", "phone:+905551112233"),
        ("phone", "0090 (555) 111-22-33", "phone:+905551112233"),
        ("email", " Ayse.Yilmaz@Example.COM ", "email:Ayse.Yilmaz@example.com"),
        ("external", "Shop:88412", "external:shop:88412"),
        ("customer", "C0000042", "C0000042"),
    ],
)
def test_identifier_keys_are_normal_forms(kind: str, value: str, key: str) -> None:
    assert identifier_key(kind, value) == key
    assert parse_identifier(key).key == key
    assert kind_of(key) == kind


@pytest.mark.parametrize(
    ("kind", "value"),
    [("phone", "555-1234"), ("phone", "+0123456789"), ("email", "no-at-sign"), ("external", "x")],
)
def test_bad_identifiers_are_refused(kind: str, value: str) -> None:
    with pytest.raises(InvalidIdentifier):
        identifier_key(kind, value)


def test_a_subject_with_a_known_prefix_must_be_in_normal_form() -> None:
    assert check_subject("phone:+905551112233") == "phone:+905551112233"
    assert check_subject("shop:88412") == "shop:88412"  # no known prefix: a customer id
    with pytest.raises(InvalidIdentifier, match=r"write 'email:a@b\.com'"):
        check_subject("email:a@B.com")


# -- the graph -----------------------------------------------------------------------------


def test_links_join_identifiers_to_a_customer_from_their_time_on() -> None:
    facts = [
        fact(1, LINKED, "C1", "phone:+905551112233", 10),
        fact(2, LINKED, "C1", "external:shop:88412", 20),
    ]
    assert replay(facts, until=15 * DAY).person("external:shop:88412").members == (
        "external:shop:88412",
    )
    person = replay(facts).person("external:shop:88412")
    assert person.id == "C1"
    assert person.members == ("C1", "external:shop:88412", "phone:+905551112233")


def test_an_unlink_splits_the_person_again() -> None:
    facts = [
        fact(1, LINKED, "C1", "phone:+905551112233", 10),
        fact(2, UNLINKED, "C1", "phone:+905551112233", 20),
    ]
    assert replay(facts, until=19 * DAY).person("C1").members == ("C1", "phone:+905551112233")
    assert replay(facts).person("C1").members == ("C1",)


def test_merge_chains_join_everyone_and_the_last_survivor_is_the_person() -> None:
    facts = [fact(1, MERGED, "A", "B", 1), fact(2, MERGED, "B", "C", 2)]
    graph = replay(facts)
    for key in "ABC":
        assert graph.person(key).id == "C"
        assert graph.person(key).customers == ("A", "B", "C")
    unmerged = replay([*facts, fact(3, UNMERGED, "B", "C", 3)])
    assert unmerged.person("A").customers == ("A", "B")
    assert unmerged.person("A").id == "B"
    assert unmerged.person("C").customers == ("C",)


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        ([fact(1, MERGED, "A", "B", 1), fact(2, MERGED, "B", "A", 2)], "merge cycle"),
        (
            [
                fact(1, MERGED, "A", "B", 1),
                fact(2, MERGED, "B", "C", 2),
                fact(3, MERGED, "C", "A", 3),
            ],
            "merge cycle: merging 'C' into 'A' would close the chain A -> B -> C",
        ),
        ([fact(1, MERGED, "A", "A", 1)], "cannot be merged into itself"),
        ([fact(1, MERGED, "A", "B", 1), fact(2, MERGED, "A", "C", 2)], "already merged into 'B'"),
        ([fact(1, UNMERGED, "A", "B", 1)], "is not merged into 'B'"),
        ([fact(1, UNLINKED, "A", "phone:+905551112233", 1)], "is not linked"),
    ],
)
def test_refused_facts_change_nothing_and_say_why(facts: list[IdentityFact], reason: str) -> None:
    graph = replay(facts)
    assert len(graph.refused) == 1
    assert reason in graph.refused[0].reason
    assert graph.refused[0].event_id == facts[-1].id
    accepted = replay(facts[:-1])
    assert graph.merges == accepted.merges
    assert graph.links == accepted.links


def test_an_identifier_linked_to_two_customers_joins_them() -> None:
    facts = [
        fact(1, LINKED, "C1", "phone:+905551112233", 1),
        fact(2, LINKED, "C2", "phone:+905551112233", 2),
    ]
    person = replay(facts).person("C2")
    assert person.customers == ("C1", "C2")
    assert person.id == "C1"  # the oldest in the graph
    assert replay(facts).suspicious() == {}


def test_an_identifier_linked_to_too_many_customers_joins_nobody_and_is_reported() -> None:
    shared = "phone:+908500000000"
    facts = [fact(n, LINKED, f"C{n}", shared, n) for n in (1, 2, 3)]
    graph = replay(facts)
    assert graph.suspicious() == {shared: ("C1", "C2", "C3")}
    assert graph.person("C1").customers == ("C1",)
    assert graph.person("C1").suspicious == (shared,)
    assert graph.person(shared).members == (shared,)
    assert replay(facts, max_customers=3).person("C1").customers == ("C1", "C2", "C3")
    # As of before the third link, the number still joined two customers.
    assert replay(facts, until=2 * DAY).person("C1").customers == ("C1", "C2")


def test_order_of_arrival_does_not_matter() -> None:
    facts = [
        fact(1, LINKED, "C1", "phone:+905551112233", 1),
        fact(2, MERGED, "C2", "C1", 2),
        fact(3, UNMERGED, "C2", "C1", 3),
        fact(4, MERGED, "C2", "C1", 4),
    ]
    forward, backward = replay(facts), replay(reversed(facts))
    assert forward.merges == backward.merges
    assert forward.person("C2") == backward.person("C2")


def test_apply_is_the_same_fold_as_replay() -> None:
    facts = [fact(1, LINKED, "C1", "email:a@example.com", 1), fact(2, MERGED, "C2", "C1", 2)]
    graph = IdentityGraph()
    for one in facts:
        apply(graph, one)
    assert graph == replay(facts)


# -- composed people -----------------------------------------------------------------------


def _profile(customer: str, **state: object) -> Profile:
    profile = Profile(customer)
    profile.state.update(state)
    return profile


def test_a_person_of_one_member_is_that_member_unchanged() -> None:
    alone = _profile("C1", purchases=2)
    assert combine("C1", {"C1": alone}) is alone
    assert combine("C1", {}) is None


def test_a_composed_profile_adds_up_its_members() -> None:
    first = _profile(
        "C1",
        first_touch=5,
        last_touch=50,
        purchases=1,
        spend={"TRY": "10.50"},
        by_type={"touchpoint.purchase": 1},
    )
    second = _profile(
        "phone:+905551112233",
        first_touch=3,
        last_touch=40,
        purchases=2,
        spend={"TRY": "1.25", "EUR": "3"},
        by_type={"touchpoint.purchase": 2, "touchpoint.sms": 4},
    )
    person = combine("C1", {"C1": first, "phone:+905551112233": second})
    assert person is not None
    assert person.customer == "C1"
    assert person.state["first_touch"] == 3
    assert person.state["last_touch"] == 50
    assert person.purchases == 3
    assert person.state["spend"] == {"TRY": "11.75", "EUR": "3"}
    assert person.by_type == {"touchpoint.purchase": 3, "touchpoint.sms": 4}
    assert person.state["members"] == ["C1", "phone:+905551112233"]


def _consent(status: str, since: int) -> dict[str, object]:
    return {
        "status": status,
        "since": since,
        "evidence_source": "web",
        "recipient_type": "individual",
        "evidence_ref": None,
    }


def test_consent_is_derived_from_the_recipients_never_combined() -> None:
    derived = derive_consent(
        {
            "C1": {"sms": _consent("granted", 10), "email": _consent("granted", 10)},
            "phone:+905551112233": {"sms": _consent("withdrawn", 5)},
        }
    )
    # One recipient's withdrawal stands for the person, even if an older one.
    assert derived["sms"]["status"] == "withdrawn"
    assert derived["sms"]["recipient"] == "phone:+905551112233"
    assert derived["sms"]["by_recipient"] == {
        "C1": "granted",
        "phone:+905551112233": "withdrawn",
    }
    assert derived["email"]["status"] == "granted"
    assert derived["email"]["recipient"] == "C1"


def test_identifier_keys_and_issue_10s_subject_hashes_agree() -> None:
    """With the ledger's pepper, an identifier's lookup key is the keyed hash issue 10
    stores for the same phone number or e-mail address as a subject, bare or prefixed."""
    from ledger.identifiers import HASHED, identifier_key, is_hashed, kind_of
    from ledger.privacy.crypto import hashed_subject, is_personal_subject

    pepper = b"p" * 32
    phone = identifier_key("phone", "+90 (555) 111-22-33", pepper)
    assert is_hashed(phone)
    assert kind_of(phone) == HASHED
    assert phone == hashed_subject("+905551112233", pepper)
    assert phone == hashed_subject("phone:+905551112233", pepper)
    email = identifier_key("email", "Ayse@Example.COM", pepper)
    assert email == hashed_subject("email:Ayse@example.com", pepper)
    assert email == hashed_subject("ayse@example.com", pepper)  # case-insensitive, as issue 10
    assert identifier_key("external", "Shop:88412", pepper) == "external:shop:88412"
    assert identifier_key("phone", "+905551112233") == "phone:+905551112233"  # no pepper
    assert is_personal_subject("phone:+905551112233")
    assert not is_personal_subject("external:shop:88412")
    assert not is_personal_subject(phone)  # a hash is not hashed again
    assert hashed_subject("+905551112233", b"q" * 32) != phone  # keyed
