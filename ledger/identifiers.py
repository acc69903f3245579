"""Identifiers: the ways the company's systems know one person, and their normal forms.

A touchpoint's ``subject`` says which kind of identifier it is by a prefix:

==========================  ===================================================
``C0000042``                a customer id (no known prefix: every subject the
                            ledger took before identifiers keeps its meaning)
``phone:+905551112233``     a phone number, E.164 (``+``, country code, number)
``email:ayse@example.com``  an e-mail address, its domain lower-cased
``external:shop:88412``     an id in another system: ``external:<system>:<id>``
==========================  ===================================================

Pure functions only (no I/O): the contract validates subjects and identity events with
them, the identity fold and the application layer derive lookup keys with
:func:`identifier_key`, the one place where an identifier's key is derived.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from ledger.vocabulary import E164_PATTERN, EMAIL_PATTERN

CUSTOMER = "customer"
PHONE = "phone"
EMAIL = "email"
EXTERNAL = "external"
HASHED = "hashed"
"""The stored form of a phone number or e-mail address when the ledger encrypts (issue
10): ``h:`` and 32 hex digits of HMAC-SHA256 under the ledger's pepper."""
PREFIXED_KINDS = (PHONE, EMAIL, EXTERNAL)
"""Kinds written with a ``kind:`` prefix; anything else is a customer id."""
PERSONAL_KINDS = frozenset({PHONE, EMAIL, HASHED})
"""Kinds that are personal data (a recipient's address): stored as keyed hashes (issue
10) wherever the ledger keeps them as a subject or a lookup key."""
HASHED_PREFIX = "h:"
_HASHED = re.compile(r"^h:[0-9a-f]{32}$", re.ASCII)

_E164 = re.compile(E164_PATTERN, re.ASCII)
_EMAIL = re.compile(EMAIL_PATTERN)
_SYSTEM = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$", re.ASCII)
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$", re.ASCII)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_PHONE_NOISE = re.compile(r"[\s().\-/]")

_IDENTIFIER_FORMS = (
    r"phone:\+[1-9][0-9]{6,14}"
    r"|email:[^@\s]+@[^@\sA-Z]+\.[^@\sA-Z]+"
    r"|external:[a-z0-9][a-z0-9._-]{0,31}:[\x21-\x7e]+"
)
IDENTIFIER_SCHEMA_PATTERN = rf"^({_IDENTIFIER_FORMS}|h:[0-9a-f]{{32}})$"
"""The JSON Schema (ECMA-262) form of an identifier in its normal form, or (as the ledger
stores a phone number or e-mail address) its keyed hash."""
SUBJECT_SCHEMA_PATTERN = rf"^((?!(phone|email|external):)[\x21-\x7e]+|{_IDENTIFIER_FORMS})$"
"""The JSON Schema (ECMA-262) form of :func:`check_subject`: a customer id, or an identifier
in its normal form."""


class InvalidIdentifier(ValueError):
    """An identifier that is not of its kind, or not in its normal form."""


@dataclass(frozen=True, slots=True)
class Identifier:
    """One identifier in its normal form."""

    kind: str
    value: str
    """The normalised value, without the kind prefix (the customer id for customers)."""

    @property
    def key(self) -> str:
        """The lookup key: what views and the identity graph are keyed by."""
        return identifier_key(self.kind, self.value)

    @property
    def personal(self) -> bool:
        return self.kind in PERSONAL_KINDS


def normalise_phone(text: str) -> str:
    """A phone number in E.164: spaces, dots, dashes, slashes and brackets dropped, a
    leading ``00`` read as ``+``. Raises :class:`InvalidIdentifier`."""
    number = _PHONE_NOISE.sub("", text.strip())
    if number.startswith("00"):
        number = "+" + number[2:]
    if not _E164.fullmatch(number):
        raise InvalidIdentifier(f"{text!r} is not a phone number in E.164 (e.g. +905321234567)")
    return number


def normalise_email(text: str) -> str:
    """An e-mail address with surrounding blanks dropped and the ASCII letters of its
    domain lower-cased (the local part is kept as written: RFC 5321 lets a mailbox be
    case-sensitive)."""
    address = text.strip()
    if len(address) > 254 or not _EMAIL.fullmatch(address):
        raise InvalidIdentifier(f"{text!r} is not an e-mail address")
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.translate(_ASCII_LOWER)}"


def normalise_external(text: str) -> str:
    """``system:id``: the system's name lower-cased (letters, digits, ``.``, ``_``, ``-``),
    the id as written (printable ASCII, no blanks)."""
    system, colon, ident = text.strip().partition(":")
    system = system.lower()
    if not colon or not _SYSTEM.fullmatch(system) or not _PRINTABLE.fullmatch(ident):
        raise InvalidIdentifier(
            f"{text!r} is not an external id (system:id, e.g. shop:88412; the system's "
            "name in letters, digits, '.', '_' or '-')"
        )
    return f"{system}:{ident}"


_NORMALISERS = {PHONE: normalise_phone, EMAIL: normalise_email, EXTERNAL: normalise_external}


def identifier_key(kind: str, value: str, pepper: bytes | None = None) -> str:
    """THE lookup key of an identifier (the one place it is derived).

    The normalised identifier (``phone:+905551112233``; a customer id as it is); with
    ``pepper`` (the ledger encrypts: issue 10), a phone number or e-mail address is keyed
    by its hash, :func:`keyed_hash`, as the ledger stores it: the same key whether the
    subject was written ``phone:+905551112233`` or ``+905551112233``.
    """
    if kind == CUSTOMER:
        return value
    normalise = _NORMALISERS.get(kind)
    if normalise is None:
        raise InvalidIdentifier(f"unknown identifier kind {kind!r}")
    normal = normalise(value)
    if pepper is not None and kind in PERSONAL_KINDS:
        return keyed_hash(normal, pepper)
    return f"{kind}:{normal}"


def personal_text(subject: str) -> str | None:
    """The phone number (E.164) or e-mail address a subject or identifier names, written
    ``phone:+90…``/``email:…`` or bare (``+90…``, ``a@b.example``), as
    :func:`keyed_hash` hashes it; ``None`` for anything else (a customer id, an external id,
    a hash). No normalisation: give the normal form."""
    kind, colon, rest = subject.partition(":")
    if colon and kind == PHONE:
        return rest if _E164.fullmatch(rest) else None
    if colon and kind == EMAIL:
        return rest if _EMAIL.fullmatch(rest) else None
    if (subject[:1] == "+" and _E164.fullmatch(subject)) or (
        "@" in subject and _EMAIL.fullmatch(subject)
    ):
        return subject
    return None


def keyed_hash(text: str, pepper: bytes) -> str:
    """The stored form of a phone number or e-mail address (:func:`personal_text`): ``h:``
    and 32 hex digits of HMAC-SHA256 under the ledger-wide ``pepper``, e-mail addresses in
    lower case (so ``Ayse@example.com`` and ``ayse@example.com`` are one recipient)."""
    normal = text.lower() if "@" in text else text
    return HASHED_PREFIX + hmac.digest(pepper, normal.encode(), "sha256")[:16].hex()


def is_hashed(key: str) -> bool:
    """Whether ``key`` is the keyed hash of a phone number or e-mail address."""
    return _HASHED.fullmatch(key) is not None


def normal_subject(text: str) -> str:
    """A key given by a caller in normal form: an identifier with a known prefix is
    normalised (``phone:+90 555 111 22 33`` -> ``phone:+905551112233``), anything else is
    taken as the customer id it is. Raises :class:`InvalidIdentifier`."""
    kind, colon, rest = text.partition(":")
    if colon and kind in _NORMALISERS:
        return f"{kind}:{_NORMALISERS[kind](rest)}"
    return text


def parse_identifier(text: str) -> Identifier:
    """An identifier from its written form (``phone:…``, ``email:…``, ``external:…`` or a
    plain customer id), normalised. Raises :class:`InvalidIdentifier`."""
    kind, colon, rest = text.partition(":")
    if colon and kind in _NORMALISERS:
        return Identifier(kind, _NORMALISERS[kind](rest))
    if not text or len(text) > 128 or not _PRINTABLE.fullmatch(text):
        raise InvalidIdentifier(f"{text!r} is not a customer id (1-128 printable characters)")
    return Identifier(CUSTOMER, text)


def kind_of(key: str) -> str:
    """The kind of a lookup key or subject (no check of its form beyond a hash's)."""
    kind, colon, _ = key.partition(":")
    if colon and kind in _NORMALISERS:
        return kind
    return HASHED if colon and kind == "h" and is_hashed(key) else CUSTOMER


def check_subject(subject: str) -> str:
    """A subject with a known prefix must be an identifier in its normal form (the stored
    subject is the lookup key, so ``phone:+90 555…`` and ``phone:+90555…`` could never be
    told to be one recipient otherwise); anything else is a customer id, as before."""
    if ":" not in subject:
        return subject
    identifier = parse_identifier(subject)
    if identifier.key != subject:
        raise InvalidIdentifier(
            f"subject {subject!r} is not in normal form: write {identifier.key!r}"
        )
    return subject


def check_linked_identifier(text: str) -> str:
    """An identifier to link: a phone, e-mail or external id in normal form, or the keyed
    hash the ledger stores for a phone number or e-mail address. Raises
    :class:`InvalidIdentifier`."""
    if is_hashed(text):
        return text
    identifier = parse_identifier(text)
    if identifier.kind == CUSTOMER:
        raise InvalidIdentifier(
            f"{text!r} has no identifier kind (phone:…, email:… or external:system:id); "
            "customers are joined with customer.merged"
        )
    check_subject(text)
    return text


def check_plain_customer(subject: str) -> str:
    """A customer id, not an identifier (identity events are about customers)."""
    if kind_of(subject) != CUSTOMER:
        raise InvalidIdentifier(f"{subject!r} is an identifier, not a customer id")
    return subject
