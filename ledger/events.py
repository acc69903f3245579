"""The event contract: CloudEvents 1.0 touchpoints as frozen pydantic models.

One class per touchpoint type, one discriminated union (:data:`Touchpoint`) on
``type``. Every type has a schema version, carried in the standard CloudEvents
``dataschema`` attribute as ``urn:touchpoint-ledger:<type>:v<N>``; an event without
``dataschema`` is version 1. Older versions are upcast (see :mod:`ledger.upcasting`)
before validation, so an old event is always readable.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from ledger.identifiers import SUBJECT_SCHEMA_PATTERN, check_plain_customer, check_subject
from ledger.payloads import (
    CallData,
    ChatData,
    ComplaintOpenedData,
    ComplaintResolvedData,
    ConsentData,
    ContactBlockedData,
    ContactDecisionData,
    CustomerDetailsData,
    CustomerErasedData,
    CustomerMergedData,
    CustomerUnmergedData,
    EmailData,
    FeedbackData,
    IdentityLinkData,
    IdentityUnlinkData,
    Moment,
    Payload,
    PurchaseData,
    RefundData,
    SmsData,
    VisitData,
)

SCHEMA_URN = re.compile(r"^urn:touchpoint-ledger:(?P<type>[a-z.]+):v(?P<version>[1-9][0-9]*)$")
EventTime = Moment
"""When it happened: the same checks as every moment in a payload."""
EventId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        pattern=r"^[\x21-\x7e]+$",
        description="Unique across the ledger; the idempotency key (UUIDs recommended).",
    ),
]
CustomerId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="The customer's id, or an identifier of the customer in its normal form "
        "(phone:+E164, email:address, external:system:id); also the Kafka record key.",
        json_schema_extra={"pattern": SUBJECT_SCHEMA_PATTERN},
    ),
    AfterValidator(check_subject),
]
PlainCustomerId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="A customer id (identity events are about customers, not identifiers).",
        json_schema_extra={"pattern": r"^(?!(phone|email|external):)[\x21-\x7e]+$"},
    ),
    AfterValidator(check_plain_customer),
]
_UTF8 = "[Uu][Tt][Ff]-8"
JSON_MEDIA_TYPE_PROBLEM = "is not application/json (the only parameter allowed is charset=utf-8)"
JSON_MEDIA_TYPE_PATTERN = (
    r"^[Aa][Pp][Pp][Ll][Ii][Cc][Aa][Tt][Ii][Oo][Nn]/[Jj][Ss][Oo][Nn][ \t]*"
    rf'(;[ \t]*[Cc][Hh][Aa][Rr][Ss][Ee][Tt]=({_UTF8}|"{_UTF8}")[ \t]*)?$'
)
DataContentType = Annotated[
    str,
    Field(
        max_length=64,
        pattern=JSON_MEDIA_TYPE_PATTERN,  # checked by pydantic-core (no Python call per event)
        description="application/json, kept as sent (any case, optionally with the "
        "parameter charset=utf-8).",
    ),
]
Source = Annotated[
    str,
    Field(
        min_length=1,
        max_length=512,
        pattern=r"^\S+$",
        description="URI-reference of the publishing service, e.g. crm/call-centre.",
    ),
]


class TouchpointEvent(BaseModel):
    """Base of every touchpoint: the CloudEvents 1.0 envelope, frozen.

    Extension attributes (``traceparent``, ``partitionkey``, ...) are kept as extra fields
    (``model_extra``), after :func:`ledger.codec.parse_event` checked them
    (:mod:`ledger.extensions`); they are stored and replayed with the event.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    schema_version: ClassVar[int] = 1

    specversion: Literal["1.0"] = "1.0"
    id: EventId
    source: Source
    type: str
    subject: CustomerId
    time: EventTime
    datacontenttype: DataContentType = "application/json"
    dataschema: str | None = Field(default=None, validate_default=True)
    data: Payload

    @classmethod
    def type_name(cls) -> str:
        """The CloudEvents ``type`` of this class, e.g. ``touchpoint.purchase``."""
        default = cls.model_fields["type"].default
        assert isinstance(default, str)
        return default

    @classmethod
    def schema_urn(cls) -> str:
        """The ``dataschema`` of the current version of this type."""
        return _URNS[cls]

    @field_validator("dataschema")
    @classmethod
    def _current_schema(cls, value: str | None) -> str:
        # Older versions were upcast before validation, so only the current one is valid here.
        # Runs for every event read, so the URN comes from a table, not from model_fields.
        expected = _URNS[cls]
        if value is not None and value != expected:
            raise ValueError(f"expected {expected!r}")
        return expected


class Call(TouchpointEvent):
    schema_version: ClassVar[int] = 2
    type: Literal["touchpoint.call"] = "touchpoint.call"
    data: CallData


class Email(TouchpointEvent):
    schema_version: ClassVar[int] = 2
    type: Literal["touchpoint.email"] = "touchpoint.email"
    data: EmailData


class Sms(TouchpointEvent):
    schema_version: ClassVar[int] = 2
    type: Literal["touchpoint.sms"] = "touchpoint.sms"
    data: SmsData


class Chat(TouchpointEvent):
    schema_version: ClassVar[int] = 2
    type: Literal["touchpoint.chat"] = "touchpoint.chat"
    data: ChatData


class Visit(TouchpointEvent):
    type: Literal["touchpoint.visit"] = "touchpoint.visit"
    data: VisitData


class Purchase(TouchpointEvent):
    type: Literal["touchpoint.purchase"] = "touchpoint.purchase"
    data: PurchaseData


class Refund(TouchpointEvent):
    type: Literal["touchpoint.refund"] = "touchpoint.refund"
    data: RefundData


class ComplaintOpened(TouchpointEvent):
    type: Literal["complaint.opened"] = "complaint.opened"
    data: ComplaintOpenedData


class ComplaintResolved(TouchpointEvent):
    type: Literal["complaint.resolved"] = "complaint.resolved"
    data: ComplaintResolvedData


class FeedbackGiven(TouchpointEvent):
    schema_version: ClassVar[int] = 2
    type: Literal["feedback.given"] = "feedback.given"
    data: FeedbackData


class ConsentGiven(TouchpointEvent):
    type: Literal["consent.given"] = "consent.given"
    data: ConsentData


class ConsentWithdrawn(TouchpointEvent):
    type: Literal["consent.withdrawn"] = "consent.withdrawn"
    data: ConsentData


class CustomerDetails(TouchpointEvent):
    type: Literal["customer.details"] = "customer.details"
    data: CustomerDetailsData


class CustomerErased(TouchpointEvent):
    type: Literal["customer.erased"] = "customer.erased"
    data: CustomerErasedData


class ContactAllowed(TouchpointEvent):
    type: Literal["contact.allowed"] = "contact.allowed"
    data: ContactDecisionData


class ContactBlocked(TouchpointEvent):
    type: Literal["contact.blocked"] = "contact.blocked"
    data: ContactBlockedData


class IdentityLinked(TouchpointEvent):
    type: Literal["identity.linked"] = "identity.linked"
    subject: PlainCustomerId
    data: IdentityLinkData


class IdentityUnlinked(TouchpointEvent):
    type: Literal["identity.unlinked"] = "identity.unlinked"
    subject: PlainCustomerId
    data: IdentityUnlinkData


class CustomerMerged(TouchpointEvent):
    type: Literal["customer.merged"] = "customer.merged"
    subject: PlainCustomerId
    data: CustomerMergedData


class CustomerUnmerged(TouchpointEvent):
    type: Literal["customer.unmerged"] = "customer.unmerged"
    subject: PlainCustomerId
    data: CustomerUnmergedData


Touchpoint = Annotated[
    Call
    | Email
    | Sms
    | Chat
    | Visit
    | Purchase
    | Refund
    | ComplaintOpened
    | ComplaintResolved
    | FeedbackGiven
    | ConsentGiven
    | ConsentWithdrawn
    | CustomerDetails
    | CustomerErased
    | ContactAllowed
    | ContactBlocked
    | IdentityLinked
    | IdentityUnlinked
    | CustomerMerged
    | CustomerUnmerged,
    Field(discriminator="type"),
]
"""Any touchpoint event; pydantic picks the class from ``type``."""

DECISION_TYPES = frozenset({"contact.allowed", "contact.blocked"})
"""Records of the ledger's own contact-policy decisions (``ledger may-contact --record``):
in the log for auditors, but not interactions with the customer."""

IDENTITY_TYPES = frozenset(
    {"identity.linked", "identity.unlinked", "customer.merged", "customer.unmerged"}
)
"""Facts about who is who (the identity graph): in the log like every fact, but not
interactions with the customer (no profile figure, no contact)."""

NOT_TOUCHPOINTS = DECISION_TYPES | IDENTITY_TYPES
"""Types the profile and contact projections pass over."""

_URNS: dict[type[TouchpointEvent], str] = {}

EVENT_CLASSES: dict[str, type[TouchpointEvent]] = {
    cls.type_name(): cls
    for cls in (
        Call,
        Email,
        Sms,
        Chat,
        Visit,
        Purchase,
        Refund,
        ComplaintOpened,
        ComplaintResolved,
        FeedbackGiven,
        ConsentGiven,
        ConsentWithdrawn,
        CustomerDetails,
        CustomerErased,
        ContactAllowed,
        ContactBlocked,
        IdentityLinked,
        IdentityUnlinked,
        CustomerMerged,
        CustomerUnmerged,
    )
}
_URNS.update(
    {
        cls: f"urn:touchpoint-ledger:{name}:v{cls.schema_version}"
        for name, cls in EVENT_CLASSES.items()
    }
)


def schema_urn_of(type_name: str) -> str:
    """The current ``dataschema`` of a touchpoint type (``KeyError`` for unknown types)."""
    return _URNS[EVENT_CLASSES[type_name]]


# Short names for people typing commands: ``ledger append --type purchase``.
SHORT_NAMES: dict[str, str] = {
    "call": "touchpoint.call",
    "email": "touchpoint.email",
    "sms": "touchpoint.sms",
    "chat": "touchpoint.chat",
    "visit": "touchpoint.visit",
    "purchase": "touchpoint.purchase",
    "refund": "touchpoint.refund",
    "complaint-opened": "complaint.opened",
    "complaint-resolved": "complaint.resolved",
    "feedback": "feedback.given",
    "consent-given": "consent.given",
    "consent-withdrawn": "consent.withdrawn",
    "details": "customer.details",
    "erased": "customer.erased",
    "contact-allowed": "contact.allowed",
    "contact-blocked": "contact.blocked",
    "linked": "identity.linked",
    "unlinked": "identity.unlinked",
    "merged": "customer.merged",
    "unmerged": "customer.unmerged",
}


def resolve_type(name: str) -> str | None:
    """The full type for a full or short name, or ``None`` if there is no such type."""
    full = SHORT_NAMES.get(name, name)
    return full if full in EVENT_CLASSES else None


def envelope_of(event: TouchpointEvent) -> dict[str, Any]:
    """The context attributes (everything but ``data``) as JSON-ready strings."""
    return event.model_dump(mode="json", exclude={"data"}, exclude_none=True)
