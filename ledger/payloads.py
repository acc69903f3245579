"""Typed ``data`` payloads of each touchpoint type (the CloudEvents ``data`` member).

Fields that hold personal data are marked ``x-personal-data`` in the JSON Schema and
live in clearly named places (``CustomerDetails.personal``, ``Consent.recipient``),
so the erasure work can find them without guessing.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic.config import JsonDict

from ledger.identifiers import (
    CUSTOMER,
    IDENTIFIER_SCHEMA_PATTERN,
    InvalidIdentifier,
    check_linked_identifier,
    parse_identifier,
)
from ledger.strict import RFC3339_SCHEMA, flag, plain_decimal, rfc3339, whole_number
from ledger.timeutil import RANGE_TEXT, check_range
from ledger.vocabulary import (
    E164_PATTERN,
    EMAIL_PATTERN,
    ISO_3166,
    ISO_4217,
    LOCALE_PATTERN,
    TIME_ZONES,
    Channel,
    Direction,
    Purpose,
    check_country,
    check_currency,
    check_locale,
    check_phone,
    check_time_zone,
)

PERSONAL: JsonDict = {"x-personal-data": True}

Text = Annotated[str, Field(min_length=1, max_length=500)]
Ref = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^\S(.*\S)?$")]
Currency = Annotated[
    str,
    AfterValidator(check_currency),
    Field(examples=["GBP", "TRY"], json_schema_extra={"enum": sorted(ISO_4217)}),
]
_AMOUNT_PATTERNS = {
    # At most 14 digits before the point and 4 significant ones after it (trailing zeros
    # do not count, as in the ledger's check); no exponent, no sign, no separators.
    "minimum": r"^(0|[1-9][0-9]{0,13})(\.[0-9]{1,4}0*)?$",
    # The same, but not zero: refunds give back something.
    "exclusiveMinimum": r"^([1-9][0-9]{0,13}(\.[0-9]{1,4}0*)?|0\.[0-9]{0,3}[1-9]0*)$",
}
WholeNumber = Annotated[int, BeforeValidator(whole_number)]
"""An integer: a JSON integer or its plain ASCII digits in a string (CSV); never a boolean."""
Flag = Annotated[bool, BeforeValidator(flag)]
"""``true`` or ``false``: a JSON boolean, or that word in a string (CSV)."""


def _amount_schema(minimum: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", minimum: 0, "maximum": 99999999999999.9999},
                {"type": "string", "pattern": _AMOUNT_PATTERNS[minimum]},
            ],
            "description": "An exact decimal written plainly (19.90; no exponent), at most 18 "
            "digits with up to 4 decimal places. Strings are recommended.",
        },
        mode="validation",
    )


def _whole_digits(value: Decimal) -> Decimal:
    """At most 14 digits before the point (18 digits, 4 of them decimals), checked here
    too: pydantic checks it since 2.14, and the contract must not depend on the version
    installed (pydantic 2.13 let ``123456789012345`` through). Same words as pydantic's."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # plain_decimal let no NaN or infinity through
    if len(digits) + exponent > AMOUNT_WHOLE_DIGITS:
        raise ValueError(
            f"Decimal input should have no more than {AMOUNT_WHOLE_DIGITS} digits before the "
            "decimal point"
        )
    return value


AMOUNT_WHOLE_DIGITS = 14
Amount = Annotated[
    Decimal,
    BeforeValidator(plain_decimal),
    Field(ge=0, max_digits=18, decimal_places=4),
    AfterValidator(_whole_digits),
    _amount_schema("minimum"),
]
PositiveAmount = Annotated[
    Decimal,
    BeforeValidator(plain_decimal),
    Field(gt=0, max_digits=18, decimal_places=4),
    AfterValidator(_whole_digits),
    _amount_schema("exclusiveMinimum"),
]
Seconds = Annotated[int, Field(ge=0, le=7 * 24 * 3600), BeforeValidator(whole_number)]
Moment = Annotated[
    AwareDatetime,
    BeforeValidator(rfc3339),
    AfterValidator(check_range),
    Field(
        description=f"RFC 3339 with a zone; its UTC instant within {RANGE_TEXT}.",
        json_schema_extra={"pattern": RFC3339_SCHEMA},
    ),
]
Email = Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)]
ReplyTo = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        pattern=r"^[\x21-\x7e]+$",
        description="What this message answers: the id of the customer's inbound event "
        "(or a conversation or ticket id shared by the thread). Schema version 2; absent: "
        "not known.",
    ),
]
"""An event id or a thread id (printable ASCII, like an event id)."""

Phone = Annotated[
    str, AfterValidator(check_phone), Field(json_schema_extra={"pattern": E164_PATTERN})
]


def _check_recipient(address: str) -> str:
    if "@" in address:
        if not _EMAIL.fullmatch(address) or len(address) > 254:
            raise ValueError(f"{address!r} is not an e-mail address")
        return address
    return check_phone(address)


_EMAIL = re.compile(EMAIL_PATTERN)
Recipient = Annotated[
    str,
    AfterValidator(_check_recipient),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": EMAIL_PATTERN, "maxLength": 254},
                {"type": "string", "pattern": E164_PATTERN},
            ],
            "description": "E-mail address or E.164 number.",
            "x-personal-data": True,
        },
        mode="validation",
    ),
]


class Payload(BaseModel):
    """Base of every payload: frozen, and strict about unknown fields (typos are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


ERASED = "[erased]"
"""What a personal field reads as once its customer's key is destroyed (``ledger erase``);
also accepted as the value of any personal field (a replay of an erased customer
re-imports)."""
Erased = Literal["[erased]"]
_B64 = r"^[A-Za-z0-9_-]+$"


class Sealed(Payload):
    """A personal value encrypted under its customer's data key (``docs/privacy.md``):
    AES-256-GCM, ``n`` the 96-bit nonce and ``c`` the ciphertext with its tag, both
    unpadded base64url; the associated data binds it to the event id, the customer and
    the field's path, so it cannot be moved to another event or field."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"description": "An encrypted personal value (docs/privacy.md)."},
    )

    enc: Literal["v1"]
    kid: Annotated[str, Field(min_length=1, max_length=64, pattern=_B64)]
    n: Annotated[str, Field(min_length=16, max_length=16, pattern=_B64)]
    c: Annotated[str, Field(min_length=22, max_length=4096, pattern=_B64)]


class Contact(Payload):
    """Fields every touchpoint carries: where, who started it, why, and who/what sent it."""

    direction: Direction
    purpose: Purpose = Purpose.SERVICE
    agent: Ref | None = Field(default=None, description="Employee or bot that handled it.")
    campaign: Ref | None = Field(default=None, description="Campaign that caused it.")


class Money(Payload):
    """An exact amount in an ISO 4217 currency."""

    amount: Amount
    currency: Currency


class CallData(Contact):
    """A phone call. ``outcome`` says whether anybody talked (schema version 2: the queue)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "if": {
                "properties": {"outcome": {"not": {"const": "answered"}}},
                "required": ["outcome"],
            },
            "then": {"properties": {"duration_seconds": {"const": 0}}},
        },
    )

    channel: Literal[Channel.PHONE] = Channel.PHONE
    outcome: Literal["answered", "abandoned", "missed", "voicemail"]
    wait_seconds: Seconds = Field(default=0, description="Time in the queue before an answer.")
    duration_seconds: Seconds = Field(default=0, description="Talk time.")
    queue: Ref | None = Field(
        default=None,
        description="The queue (skill group) the call waited in. Schema version 2; absent: "
        "not known.",
    )

    @model_validator(mode="after")
    def _no_talk_without_answer(self) -> CallData:
        if self.outcome != "answered" and self.duration_seconds:
            raise ValueError(
                f"duration_seconds must be 0 when outcome is {self.outcome!r} (nobody talked)"
            )
        return self


class EmailData(Contact):
    """An e-mail, sent or received (schema version 2: a reply names what it answers)."""

    channel: Literal[Channel.EMAIL] = Channel.EMAIL
    template: Ref | None = None
    subject_line: Text | None = None
    bounced: Flag = False
    in_reply_to: ReplyTo | None = None


class SmsData(Contact):
    """A text message, sent or received (schema version 2: a reply names what it answers)."""

    channel: Literal[Channel.SMS] = Channel.SMS
    template: Ref | None = None
    segments: WholeNumber = Field(default=1, ge=1, le=255)
    in_reply_to: ReplyTo | None = None


class ChatData(Contact):
    """A chat conversation (web chat, messaging app, social media; schema version 2: a
    reply names what it answers)."""

    channel: Literal[Channel.CHAT, Channel.SOCIAL, Channel.WEB] = Channel.CHAT
    wait_seconds: Seconds = 0
    duration_seconds: Seconds = 0
    messages: WholeNumber = Field(default=1, ge=0, le=100_000)
    in_reply_to: ReplyTo | None = None


class VisitData(Contact):
    """A visit to a store or to the web shop."""

    channel: Literal[Channel.STORE, Channel.WEB]
    direction: Direction = Direction.INBOUND
    location: Ref | None = Field(default=None, description="Store id or site section.")
    duration_seconds: Seconds = 0


class PurchaseData(Contact):
    """An order. ``amount`` is the order total, exact, in ``currency``."""

    channel: Channel
    direction: Direction = Direction.INBOUND
    purpose: Purpose = Purpose.TRANSACTIONAL
    order_id: Ref
    amount: Amount
    currency: Currency
    item_count: WholeNumber = Field(ge=1, le=1_000_000)


class RefundData(Contact):
    """Money or goods given back for an earlier order (``order_id`` links it)."""

    channel: Channel
    direction: Direction = Direction.INBOUND
    purpose: Purpose = Purpose.TRANSACTIONAL
    kind: Literal["refund", "return"] = "refund"
    order_id: Ref
    amount: PositiveAmount
    currency: Currency
    item_count: WholeNumber = Field(default=0, ge=0, le=1_000_000)
    reason: Text | None = None


ComplaintCategory = Literal[
    "product", "delivery", "billing", "service", "staff", "privacy", "contact_frequency", "other"
]


class ComplaintOpenedData(Contact):
    """A complaint was raised; it stays open until a resolution with the same id."""

    channel: Channel
    direction: Direction = Direction.INBOUND
    complaint_id: Ref
    category: ComplaintCategory
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    summary: Text | None = None


class ComplaintResolvedData(Contact):
    """A complaint was closed, with what was done and any compensation."""

    channel: Channel
    direction: Direction = Direction.OUTBOUND
    complaint_id: Ref
    resolution: Literal[
        "fixed", "refunded", "replaced", "compensated", "explained", "rejected", "withdrawn"
    ]
    compensation: Money | None = None
    note: Text | None = None


# A score's valid range for each scale: CSAT 1-5, NPS 0-10, CES 1-7.
SCALES: dict[str, tuple[int, int]] = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}


class FeedbackData(Contact):
    """A survey answer or review (schema version 2: the scale is explicit)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            # The score's range on its scale; an absent scale (version 1) is CSAT.
            "allOf": [
                {
                    "if": {"properties": {"scale": {"const": scale}}},
                    "then": {"properties": {"score": {"minimum": low, "maximum": high}}},
                }
                for scale, (low, high) in {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}.items()
            ]
        },
    )

    channel: Channel
    direction: Direction = Direction.INBOUND
    scale: Literal["csat", "nps", "ces"]
    score: WholeNumber
    comment: Text | None = None
    about: Ref | None = Field(default=None, description="Order or complaint id it is about.")

    @model_validator(mode="after")
    def _score_on_scale(self) -> FeedbackData:
        low, high = SCALES[self.scale]
        if not low <= self.score <= high:
            raise ValueError(f"score {self.score} is outside the {self.scale} scale {low}-{high}")
        return self


class ConsentData(Payload):
    """A consent record for commercial messages on one channel (modelled on Turkey's İYS).

    ``evidence_source`` is where the proof lives (İYS "kaynak"); ``recipient`` is the
    address the consent is for (personal data).
    """

    channel: Literal[Channel.PHONE, Channel.SMS, Channel.EMAIL]
    recipient_type: Literal["individual", "merchant"] = "individual"
    evidence_source: Literal[
        "web",
        "mobile_app",
        "call_centre",
        "physical",
        "wet_signature",
        "email",
        "sms",
        "social_media",
        "event",
        "atm",
        "electronic",
        "pre_2015",
    ]
    evidence_ref: Ref | None = Field(default=None, description="Form, recording or document id.")
    recipient: Recipient | Erased | Sealed | None = Field(
        default=None, description="E-mail address or E.164 number.", json_schema_extra=PERSONAL
    )


class PersonalData(Payload):
    """Personal data of a customer. Kept apart so that it can be erased or masked."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=PERSONAL)

    name: Text | Sealed | None = None
    email: Email | Erased | Sealed | None = None
    phone: Phone | Erased | Sealed | None = None


class CustomerDetailsData(Payload):
    """What the company knows about who the customer is (an "identify" call).

    Absent fields are unknown in this event, not erased: projections keep the last
    known value of each field.
    """

    personal: PersonalData = PersonalData()
    country: (
        Annotated[
            str, AfterValidator(check_country), Field(json_schema_extra={"enum": sorted(ISO_3166)})
        ]
        | None
    ) = None
    time_zone: (
        Annotated[
            str,
            AfterValidator(check_time_zone),
            Field(json_schema_extra={"enum": sorted(TIME_ZONES)}),
        ]
        | None
    ) = Field(default=None, description="IANA name, e.g. Europe/Istanbul; used for quiet hours.")
    locale: (
        Annotated[
            str, AfterValidator(check_locale), Field(json_schema_extra={"pattern": LOCALE_PATTERN})
        ]
        | None
    ) = None


class DecisionReason(Payload):
    """Why a contact was denied: the rule, in words, and when waiting would lift it."""

    rule: Literal["consent", "cap", "quiet", "complaint", "stale"]
    message: Text
    until: Moment | None = Field(
        default=None, description="When this rule stops denying (absent: not by waiting)."
    )


class ContactDecisionData(Payload):
    """A contact-policy decision the ledger gave (``ledger may-contact --record``): what was
    asked, under which policy version. A record of a check, not a contact: projections count
    no touchpoint for it."""

    channel: Channel
    purpose: Purpose
    policy_version: Ref
    policy_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    requested_by: Ref | None = Field(
        default=None, description="The service or campaign that asked."
    )


class ContactBlockedData(ContactDecisionData):
    """A denied contact: every reason, and the earliest time it would be allowed (when
    only waiting would help)."""

    reasons: list[DecisionReason] = Field(min_length=1)
    earliest: Moment | None = None


class CustomerErasedData(Payload):
    """A customer's personal data was erased (``ledger erase``): their data key is
    destroyed, so every personal field of their events reads as ``[erased]``. Holds no
    personal data itself: the record KVKK and the GDPR ask a controller to keep."""

    reason: Text = Field(description="The legal basis or reason, e.g. 'KVKK Art. 7 request'.")
    request_id: Ref | None = Field(default=None, description="The request or ticket id.")
    requested_by: Ref | None = Field(default=None, description="Who asked or approved it.")
    categories: list[Literal["identity", "contact", "consent_recipient"]] = Field(
        default=["identity", "contact", "consent_recipient"],
        description="What was erased: identity (name), contact (e-mail, phone), "
        "consent_recipient (the address of consent records).",
    )
    keys_destroyed: WholeNumber = Field(
        default=0, ge=0, le=1_000_000, description="Data keys destroyed (0: none was held)."
    )
    retention_rule: Ref | None = Field(
        default=None, description="The retention rule that made it due (ledger erase --due)."
    )


def _check_identifier(text: str) -> str:
    """An identifier to link, in its normal form (``ledger link`` normalises what it is
    given; a publisher writes the normal form); a plain customer id is not one (customers
    are joined with ``customer.merged``)."""
    return check_linked_identifier(text)


def _check_customer(text: str) -> str:
    if parse_identifier(text).kind != CUSTOMER:
        raise InvalidIdentifier(f"{text!r} is an identifier, not a customer id")
    return text


LinkedIdentifier = Annotated[
    str,
    Field(min_length=3, max_length=300),
    AfterValidator(_check_identifier),
    Field(
        description="phone:+E164, email:address (domain lower-cased) or external:system:id, "
        "in normal form. Holds a phone number or e-mail address: personal data, stored by "
        "the ledger as its keyed hash (h: and 32 hex digits) when it encrypts.",
        json_schema_extra={**PERSONAL, "pattern": IDENTIFIER_SCHEMA_PATTERN},
    ),
]
PlainCustomer = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$"),
    AfterValidator(_check_customer),
    Field(
        description="A customer id (no phone:/email:/external: prefix).",
        json_schema_extra={"pattern": r"^(?!(phone|email|external):)[\x21-\x7e]+$"},
    ),
]


class IdentityLinkData(Payload):
    """An identifier belongs to the customer (the event's subject): the SMS gateway's
    phone number, the e-mail platform's address, the shop's customer number."""

    identifier: LinkedIdentifier
    evidence: Text | None = Field(
        default=None, description="Why the link holds: a verified login, an order form, ..."
    )


class IdentityUnlinkData(Payload):
    """An identifier no longer belongs to the customer (a link made in error, a number
    given up)."""

    identifier: LinkedIdentifier
    reason: Text | None = None


class CustomerMergedData(Payload):
    """The customer (the event's subject) is the same person as ``survivor``, whose id the
    person keeps. Undone by ``customer.unmerged``; the log is never rewritten."""

    survivor: PlainCustomer
    reason: Text


class CustomerUnmergedData(Payload):
    """Undo the standing merge of the customer (the event's subject) into ``survivor``."""

    survivor: PlainCustomer
    reason: Text
