"""The encryption every append goes through (attached to the log by ``application.wiring``)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from ledger.events import Touchpoint
from ledger.privacy.crypto import (
    HASHED_FIELDS,
    hashed_subject,
    is_personal_subject,
    needs_sealing,
    replaced_data,
    seal_event,
    subject_aad,
    with_subject,
)
from ledger.privacy.keystore import KeyStore


class Protector:
    """Encrypts the personal values of a batch with each customer's data key (created when
    a customer has none). Events without a personal value in clear pass untouched: most
    batches cost one type check per event. Raises ``KeyStoreUnavailable`` or
    ``MasterKeyError`` when it cannot encrypt, so nothing is appended in clear."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def __call__(self, events: Sequence[Touchpoint]) -> Sequence[Touchpoint]:
        events = self._hash_subjects(events)
        indexes = [i for i, event in enumerate(events) if needs_sealing(event)]
        if not indexes:
            return events
        keys = self.keys.keys_for({events[i].subject for i in indexes}, create=True)
        sealed = list(events)
        for i in indexes:
            sealed[i] = seal_event(events[i], keys[events[i].subject])
        return sealed

    def _hash_subjects(self, events: Sequence[Touchpoint]) -> Sequence[Touchpoint]:
        """Customer ids that are personal data (phone numbers, e-mail addresses, bare or
        as ``phone:``/``email:`` identifiers) stored as their keyed hash, and so are the
        phone numbers and e-mail addresses of identity links; the original kept in the key
        store, sealed under the hashed id's own key (so erasing it forgets it too)."""
        personal = {e.subject for e in events if is_personal_subject(e.subject)}
        linked = {
            e.id: value
            for e in events
            if (field := HASHED_FIELDS.get(e.type)) is not None
            and isinstance(value := getattr(e.data, field, None), str)
            and is_personal_subject(value)
        }
        personal.update(linked.values())
        if not personal:
            return events
        pepper = self.keys.master().pepper()
        hashed = {subject: hashed_subject(subject, pepper) for subject in personal}
        keys = self.keys.keys_for(set(hashed.values()), create=True)
        self.keys.remember_subjects(
            {
                h: orjson.dumps(keys[h].seal(subject, subject_aad(h)).model_dump())
                for subject, h in hashed.items()
            }
        )
        if linked:
            events = [
                replaced_data(e, HASHED_FIELDS[e.type], hashed[linked[e.id]])
                if e.id in linked
                else e
                for e in events
            ]
        return [with_subject(e, hashed[e.subject]) if e.subject in hashed else e for e in events]

    def close(self) -> None:
        """Close the key store (it opens again if the log is used after this)."""
        self.keys.close()
