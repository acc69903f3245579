"""Personal data in answers: which fields hold it, and an answer without them.

A face shows personal data (a customer's name, e-mail, phone; a consent's recipient
address) only to a caller allowed to see it; everyone else gets the same answer with those
values replaced by :data:`WITHHELD`, so its shape does not depend on who asks.
"""

from __future__ import annotations

from typing import Any

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
    return {**answer, "details": shown}


def without_personal_event(document: dict[str, Any]) -> dict[str, Any]:
    """An event (or ``{position, recorded_at, event}``) with its personal data withheld."""
    if "event" in document and isinstance(document["event"], dict):
        return {**document, "event": without_personal_event(document["event"])}
    data = document.get("data")
    if not isinstance(data, dict) or not any(k in data for k in PERSONAL_KEYS):
        return document
    hidden = {k: (WITHHELD if k in PERSONAL_KEYS and v is not None else v) for k, v in data.items()}
    return {**document, "data": hidden}
