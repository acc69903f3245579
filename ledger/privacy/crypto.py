"""Sealing personal values: AES-256-GCM under a per-customer data key.

A sealed value is stored in place of the cleartext as the envelope
``{"enc": "v1", "kid": KEY_ID, "n": NONCE, "c": CIPHERTEXT}`` (``n`` and ``c`` unpadded
base64url; ``c`` ends with GCM's 16-byte tag). The associated data is
``touchpoint-ledger/v1 \\0 EVENT_ID \\0 CUSTOMER \\0 FIELD_PATH``: a ciphertext moved to
another event, customer or field does not open.

The nonce is synthetic (as in SIV modes): keyed BLAKE2b (a PRF) of the associated data and
the value, 96 bits, under a nonce key derived from the data key (HMAC-SHA256).
The same value of the same field of the same event always seals to the same bytes, so an
event appended twice (a retried import, a re-published Kafka record) is byte-for-byte the
same record, as consumers' duplicate detection expects; two different values never share
a nonce unless the PRF collides in 96 bits (about 2^48 values under one customer's key
before that becomes likely).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel

from ledger.events import Touchpoint
from ledger.identifiers import keyed_hash, personal_text
from ledger.payloads import ERASED, Sealed

ENVELOPE_VERSION = "v1"
UNREADABLE = "[unreadable]"
"""What a sealed value reads as when its key exists but the ciphertext does not open under
it (altered bytes: ``ledger audit verify`` names the record)."""

PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "customer.details": ("personal.name", "personal.email", "personal.phone"),
    "consent.given": ("recipient",),
    "consent.withdrawn": ("recipient",),
}
"""Per event type, the paths (within ``data``) of the fields the contract marks
``x-personal-data`` (a unit test holds this to the JSON Schema)."""

_AAD_PREFIX = b"touchpoint-ledger/v1\x00"
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_M = TypeVar("_M", bound=BaseModel)


def b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_URLSAFE).decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def associated_data(event_id: str, customer: str, path: str) -> bytes:
    """What a sealed value is bound to: its event, its customer and its field."""
    return b"\x00".join(
        (_AAD_PREFIX + event_id.encode(), customer.encode(), ("data." + path).encode())
    )


@dataclass(frozen=True)
class DataKey:
    """One customer's data key (256 bits), unwrapped, with its id."""

    kid: str
    customer: str
    secret: bytes = field(repr=False)
    _aead: AESGCM = field(init=False, repr=False, compare=False)
    _nonce_key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_aead", AESGCM(self.secret))
        nonce_key = hmac.digest(self.secret, b"touchpoint-ledger nonce key", "sha256")
        object.__setattr__(self, "_nonce_key", nonce_key)  # a key of its own for the PRF

    def seal(self, value: str, aad: bytes) -> Sealed:
        plaintext = value.encode("utf-8")
        message = aad + b"\x00" + plaintext
        nonce = blake2b(message, key=self._nonce_key, digest_size=12).digest()
        ciphertext = self._aead.encrypt(nonce, plaintext, aad)
        # Validated (pydantic-core: ~3 us, faster than the Python model_construct).
        return Sealed(enc="v1", kid=self.kid, n=b64(nonce), c=b64(ciphertext))

    def open(self, envelope: Mapping[str, Any], aad: bytes) -> str:
        """The cleartext of ``envelope``, or :data:`UNREADABLE` if it does not open."""
        try:
            nonce, ciphertext = unb64(envelope["n"]), unb64(envelope["c"])
            return self._aead.decrypt(nonce, ciphertext, aad).decode("utf-8")
        except (InvalidTag, ValueError, KeyError, TypeError):
            return UNREADABLE


def is_envelope(value: object) -> bool:
    """Whether ``value`` (decoded JSON) is a sealed value's envelope."""
    return isinstance(value, dict) and value.get("enc") == ENVELOPE_VERSION and "kid" in value


def needs_sealing(event: Touchpoint) -> bool:
    """Whether ``event`` holds a personal value in clear (the only events appends encrypt)."""
    paths = PERSONAL_FIELDS.get(event.type)
    if paths is None:
        return False
    data: Any = event.data
    for path in paths:
        value = _model_get(data, path)
        if isinstance(value, str) and value != ERASED:
            return True
    return False


def seal_event(event: Touchpoint, key: DataKey) -> Touchpoint:
    """``event`` with each personal value in clear replaced by its envelope under ``key``."""
    data: Any = event.data
    if event.type == "customer.details":
        personal = data.personal
        updates = {
            name: key.seal(value, associated_data(event.id, event.subject, f"personal.{name}"))
            for name in ("name", "email", "phone")
            if isinstance(value := getattr(personal, name), str) and value != ERASED
        }
        data = _replaced(data, personal=_replaced(personal, **updates))
    else:
        value = data.recipient
        if isinstance(value, str) and value != ERASED:
            sealed = key.seal(value, associated_data(event.id, event.subject, "recipient"))
            data = _replaced(data, recipient=sealed)
    return _replaced(event, data=data)


def _replaced(model: _M, **changes: Any) -> _M:
    """A shallow copy of a frozen model with ``changes`` (what ``model_copy(update=...)``
    does, without its generic copying: this runs for every personal event of an import)."""
    copy = model.__class__.__new__(model.__class__)
    object.__setattr__(copy, "__dict__", {**model.__dict__, **changes})
    object.__setattr__(
        copy, "__pydantic_fields_set__", model.__pydantic_fields_set__ | changes.keys()
    )
    object.__setattr__(copy, "__pydantic_extra__", model.__pydantic_extra__)
    object.__setattr__(copy, "__pydantic_private__", model.__pydantic_private__)
    return copy


def _model_get(data: Any, path: str) -> object:
    for part in path.split("."):
        data = getattr(data, part, None)
        if data is None:
            return None
    return data


KeyLookup = Callable[[str], DataKey | None]
"""A key id -> its data key, or ``None`` once destroyed."""


def open_value(value: object, event_id: str, customer: str, path: str, keys: KeyLookup) -> object:
    """A stored personal value as people read it: cleartext, ``[erased]`` when its key is
    destroyed, ``[unreadable]`` when it does not open; anything else unchanged."""
    if not is_envelope(value):
        return value
    assert isinstance(value, dict)
    key = keys(str(value["kid"]))
    if key is None:
        return ERASED
    return key.open(value, associated_data(event_id, customer, path))


def reveal_data(
    event_type: str, event_id: str, customer: str, data: dict[str, Any], keys: KeyLookup
) -> dict[str, Any]:
    """A copy of an event's ``data`` (canonical JSON form) with its personal values opened."""
    paths = PERSONAL_FIELDS.get(event_type)
    if not paths:
        return data
    revealed = dict(data)
    for path in paths:
        head, _, leaf = path.rpartition(".")
        holder: Any = revealed
        if head:
            inner = revealed.get(head)
            if not isinstance(inner, dict):
                continue
            holder = revealed[head] = dict(inner)
        if leaf in holder:
            holder[leaf] = open_value(holder[leaf], event_id, customer, path, keys)
    return revealed


def reveal_document(document: dict[str, Any], keys: KeyLookup) -> dict[str, Any]:
    """A copy of a structured CloudEvent (JSON dict) with its personal values opened."""
    data = document.get("data")
    if not isinstance(data, dict) or document.get("type") not in PERSONAL_FIELDS:
        return document
    return {
        **document,
        "data": reveal_data(
            str(document["type"]), str(document["id"]), str(document["subject"]), data, keys
        ),
    }


def sealed_kids(documents: Sequence[Mapping[str, Any]]) -> set[str]:
    """The key ids the personal values of ``documents`` are sealed under."""
    found: set[str] = set()
    for document in documents:
        paths = PERSONAL_FIELDS.get(str(document.get("type")))
        data = document.get("data")
        if not paths or not isinstance(data, dict):
            continue
        for path in paths:
            value: Any = data
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if is_envelope(value):
                found.add(str(value["kid"]))
    return found


def cleartext_paths(event_type: str, data: Mapping[str, Any]) -> list[str]:
    """The personal fields of an event's ``data`` that hold a value in clear."""
    found = []
    for path in PERSONAL_FIELDS.get(event_type, ()):
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str) and value != ERASED:
            found.append(path)
    return found


# -- personal subjects ------------------------------------------------------------------------

HASHED_FIELDS: dict[str, str] = {"identity.linked": "identifier", "identity.unlinked": "identifier"}
"""Per event type, the field (within ``data``) that is personal data when it names a phone
number or an e-mail address (issue 12's identifiers): stored as the keyed hash, like a
personal subject, since the identity graph looks it up (an external id stays in clear)."""


def is_personal_subject(subject: str) -> bool:
    """Whether a customer id or identifier is itself personal data: an E.164 phone number
    or an e-mail address, bare or as ``phone:``/``email:`` (the ledger stores it as a keyed
    hash)."""
    return personal_text(subject) is not None


def hashed_subject(subject: str, pepper: bytes) -> str:
    """The id the ledger stores for a personal ``subject`` (:func:`is_personal_subject`):
    ``h:`` and 32 hex digits of HMAC-SHA256 under the ledger-wide pepper (e-mail addresses
    compared in lower case). ``phone:+90…`` and ``+90…`` are one id
    (:func:`ledger.identifiers.keyed_hash`)."""
    return keyed_hash(personal_text(subject) or subject, pepper)


def subject_aad(hashed: str) -> bytes:
    return associated_data("(subject)", hashed, "subject")


def replaced_data(event: Touchpoint, field: str, value: str) -> Touchpoint:
    """``event`` with ``data.<field>`` stored as ``value`` (a hashed identifier)."""
    return _replaced(event, data=_replaced(event.data, **{field: value}))


def with_subject(event: Touchpoint, subject: str) -> Touchpoint:
    """``event`` stored under another customer id."""
    return _replaced(event, subject=subject)
