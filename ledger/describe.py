"""One readable line per touchpoint, for tables people read (not for machines)."""

from __future__ import annotations

from functools import singledispatch

from ledger.events import (
    Call,
    Chat,
    ComplaintOpened,
    ComplaintResolved,
    ConsentGiven,
    ConsentWithdrawn,
    ContactAllowed,
    ContactBlocked,
    CustomerDetails,
    CustomerErased,
    CustomerMerged,
    CustomerUnmerged,
    Email,
    FeedbackGiven,
    IdentityLinked,
    IdentityUnlinked,
    Purchase,
    Refund,
    Sms,
    TouchpointEvent,
    Visit,
)


@singledispatch
def describe(event: TouchpointEvent) -> str:
    """A short human summary of the event's payload."""
    return event.type


def _contact(event: Call | Email | Sms | Chat) -> str:
    data = event.data
    text = f"{data.direction} {data.purpose}"
    return f"{text} ({data.campaign})" if data.campaign else text


@describe.register
def _(event: Call) -> str:
    data = event.data
    text = f"{_contact(event)} call {data.outcome}"
    if data.direction == "inbound":  # a queue wait only exists for the caller
        text += f", waited {data.wait_seconds}s"
    if data.outcome == "answered":
        text += f", talked {data.duration_seconds // 60}m{data.duration_seconds % 60:02d}s"
    return text


@describe.register
def _(event: Email) -> str:
    return f"{_contact(event)} e-mail" + (" (bounced)" if event.data.bounced else "")


@describe.register
def _(event: Sms) -> str:
    return f"{_contact(event)} SMS"


@describe.register
def _(event: Chat) -> str:
    return f"{_contact(event)} chat, {event.data.messages} messages"


@describe.register
def _(event: Visit) -> str:
    return f"{event.data.channel} visit {event.data.location or ''}".rstrip()


@describe.register
def _(event: Purchase) -> str:
    data = event.data
    return f"order {data.order_id}: {data.amount} {data.currency}, {data.item_count} items"


@describe.register
def _(event: Refund) -> str:
    data = event.data
    return f"{data.kind} of {data.order_id}: {data.amount} {data.currency}"


@describe.register
def _(event: ComplaintOpened) -> str:
    data = event.data
    return f"complaint {data.complaint_id} opened: {data.category}, {data.severity}"


@describe.register
def _(event: ComplaintResolved) -> str:
    data = event.data
    extra = (
        f" ({data.compensation.amount} {data.compensation.currency})" if data.compensation else ""
    )
    return f"complaint {data.complaint_id} resolved: {data.resolution}{extra}"


@describe.register
def _(event: FeedbackGiven) -> str:
    data = event.data
    return f"{data.scale.upper()} {data.score}" + (f" about {data.about}" if data.about else "")


@describe.register
def _(event: ConsentGiven) -> str:
    return f"consent given for {event.data.channel} ({event.data.evidence_source})"


@describe.register
def _(event: ConsentWithdrawn) -> str:
    return f"consent withdrawn for {event.data.channel} ({event.data.evidence_source})"


@describe.register
def _(event: CustomerDetails) -> str:
    data = event.data
    known = [f for f in ("country", "time_zone", "locale") if getattr(data, f)]
    personal = [f for f in ("name", "email", "phone") if getattr(data.personal, f)]
    return "details: " + ", ".join(known + [f"{f} (personal)" for f in personal])


@describe.register
def _(event: CustomerErased) -> str:
    data = event.data
    request = f", request {data.request_id}" if data.request_id else ""
    return f"personal data erased ({data.reason}{request})"


@describe.register
def _(event: ContactAllowed) -> str:
    data = event.data
    return (
        f"may-contact check: {data.purpose} {data.channel} allowed (policy {data.policy_version})"
    )


@describe.register
def _(event: ContactBlocked) -> str:
    data = event.data
    rules = ", ".join(dict.fromkeys(r.rule for r in data.reasons))
    return f"may-contact check: {data.purpose} {data.channel} blocked by {rules}"


@describe.register
def _(event: IdentityLinked) -> str:
    evidence = f" ({event.data.evidence})" if event.data.evidence else ""
    return f"identifier {event.data.identifier} linked{evidence}"


@describe.register
def _(event: IdentityUnlinked) -> str:
    reason = f" ({event.data.reason})" if event.data.reason else ""
    return f"identifier {event.data.identifier} unlinked{reason}"


@describe.register
def _(event: CustomerMerged) -> str:
    return f"merged into {event.data.survivor} ({event.data.reason})"


@describe.register
def _(event: CustomerUnmerged) -> str:
    return f"unmerged from {event.data.survivor} ({event.data.reason})"
