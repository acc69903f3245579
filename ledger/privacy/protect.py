"""The encryption every append goes through (attached to the log by ``ledger.app``)."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.events import Touchpoint
from ledger.privacy.crypto import needs_sealing, seal_event
from ledger.privacy.keystore import KeyStore


class Protector:
    """Encrypts the personal values of a batch with each customer's data key (created when
    a customer has none). Events without a personal value in clear pass untouched: most
    batches cost one type check per event. Raises ``KeyStoreUnavailable`` or
    ``MasterKeyError`` when it cannot encrypt, so nothing is appended in clear."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def __call__(self, events: Sequence[Touchpoint]) -> Sequence[Touchpoint]:
        indexes = [i for i, event in enumerate(events) if needs_sealing(event)]
        if not indexes:
            return events
        keys = self.keys.keys_for({events[i].subject for i in indexes}, create=True)
        sealed = list(events)
        for i in indexes:
            sealed[i] = seal_event(events[i], keys[events[i].subject])
        return sealed
