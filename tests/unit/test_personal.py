"""Answers for callers without the 'personal' scope: personal details, and the phone numbers
and e-mail addresses of a person (issue 12) withheld; customer ids and figures kept."""

from __future__ import annotations

from application.personal import WITHHELD, without_personal_event, without_personal_profile


def test_a_profile_withholds_details_and_the_persons_identifiers() -> None:
    answer = {
        "customer": "C7",
        "members": ["C7", "S-7", "phone:+905321114455", "email:ayse@example.com", "[erased]"],
        "details": {
            "name": {"value": "Ayşe", "at": "t"},
            "country": {"value": "TR", "at": "t"},
        },
        "by_type": {"touchpoint.sms": 2},
    }
    shown = without_personal_profile(answer)
    assert shown["members"] == ["C7", "S-7", WITHHELD, WITHHELD, "[erased]"]
    assert shown["details"]["name"]["value"] == WITHHELD
    assert shown["details"]["country"]["value"] == "TR"
    assert shown["by_type"] == answer["by_type"]
    assert answer["members"][2] == "phone:+905321114455"  # the input is not changed


def test_an_event_withholds_a_phone_number_subject_and_a_linked_identifier() -> None:
    sms = {"type": "touchpoint.sms", "subject": "phone:+905321114455", "data": {"purpose": "x"}}
    link = {
        "position": "0:5",
        "event": {
            "type": "identity.linked",
            "subject": "C7",
            "data": {"identifier": "email:ayse@example.com", "evidence": "sms code"},
        },
    }
    assert without_personal_event(sms)["subject"] == WITHHELD
    assert without_personal_event(sms)["data"] == {"purpose": "x"}
    shown = without_personal_event(link)["event"]
    assert shown["subject"] == "C7"
    assert shown["data"] == {"identifier": WITHHELD, "evidence": "sms code"}
