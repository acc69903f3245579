"""Personal data in answers: which fields hold it, and an answer without them.

A face shows personal data (a customer's name, e-mail, phone; a consent's recipient
address) only to a caller allowed to see it; everyone else gets the same answer with those
values replaced by :data:`WITHHELD`, so its shape does not depend on who asks.
"""

from __future__ import annotations

from typing import Any

from ledger.privacy.crypto import is_personal_subject

WITHHELD = "[personal]"
"""What stands in for a personal value the caller may not see."""

PERSONAL_DETAILS = ("name", "email", "phone")
"""Profile details that are personal (the contract's ``CustomerDetails.personal``)."""

PERSONAL_KEYS = ("personal", "recipient")
"""Keys of event data whose values are personal (marked ``x-personal-data``)."""


def without_personal_profile(answer: dict[str, Any]) -> dict[str, Any]:
    """A profile answer (``ledger profile --json``) with personal details withheld."""
    details = answer.get("details")
    if not isinstance(details, dict):
        return answer
    shown = {
        name: {**detail, "value": WITHHELD} if name in PERSONAL_DETAILS else detail
        for name, detail in details.items()
    }
    hidden: dict[str, Any] = {**answer, "details": shown}
    members = answer.get("members")
    if isinstance(members, list):  # the person's phone numbers and addresses (issue 12)
        hidden["members"] = [_identifier(m) for m in members]
    return hidden


def _identifier(value: Any) -> Any:
    """A customer id or identifier as shown: a phone number or e-mail address withheld."""
    return WITHHELD if isinstance(value, str) and is_personal_subject(value) else value


def without_personal_event(document: dict[str, Any]) -> dict[str, Any]:
    """An event (or ``{position, recorded_at, event}``) with its personal data withheld."""
    if "event" in document and isinstance(document["event"], dict):
        return {**document, "event": without_personal_event(document["event"])}
    shown = dict(document)
    if "subject" in shown:  # an SMS to a phone number: its subject is the number
        shown["subject"] = _identifier(shown["subject"])
    data = document.get("data")
    if not isinstance(data, dict):
        return shown
    hidden = {k: (WITHHELD if k in PERSONAL_KEYS and v is not None else v) for k, v in data.items()}
    if "identifier" in hidden:  # identity.linked / unlinked: the phone number or address
        hidden["identifier"] = _identifier(hidden["identifier"])
    return {**shown, "data": hidden}
