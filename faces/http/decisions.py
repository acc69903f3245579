"""Contact-policy endpoints: may-contact (one, or a batch), violations, pressure, policy."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from application import decisions
from faces.http.common import (
    Caller,
    ServerState,
    json_answer,
    now_or,
    parse_time,
    parse_window,
    problem,
    require,
    state_of,
)
from ledger.vocabulary import Channel, Purpose

router = APIRouter(prefix="/v1", tags=["decisions"])
Checker = Annotated[Caller, Depends(require("contact-check"))]
Auditor = Annotated[Caller, Depends(require("audit"))]

_CHANNELS = {c.value for c in Channel}
_PURPOSES = {p.value for p in Purpose}


def _may_record(caller: Caller, state: ServerState, record: bool) -> None:
    if record and state.auth and (caller is None or not caller.allows("publish")):
        raise problem(
            403,
            "record=true appends to the log: this API key lacks the scope 'publish'",
            required_scope="publish",
        )


@router.get("/may-contact")
def may_contact(
    request: Request,
    caller: Checker,
    customer: str,
    channel: str,
    purpose: str,
    at: str | None = None,
    record: bool = False,
    requested_by: str | None = None,
) -> Response:
    """``ledger may-contact CUSTOMER --channel --purpose --json`` (``record=true``: also
    appended to the log, which needs the ``publish`` scope too)."""
    return may_contact_answer(
        state_of(request), caller, customer, channel, purpose, at, record, requested_by
    )


def may_contact_answer(
    state: ServerState,
    caller: Caller,
    customer: str,
    channel: str,
    purpose: str,
    at: str | None,
    record: bool,
    requested_by: str | None,
) -> Response:
    """The may-contact route's answer (also given by :mod:`faces.http.fast`)."""
    if channel not in _CHANNELS:
        raise problem(422, f"channel: {channel!r} is not one of {sorted(_CHANNELS)}")
    if purpose not in _PURPOSES:
        raise problem(422, f"purpose: {purpose!r} is not one of {sorted(_PURPOSES)}")
    _may_record(caller, state, record)
    decision = decisions.may_contact(
        state.settings,
        customer,
        channel,
        purpose,
        now_or(at),
        policy_file=None,
        record=record,
        requested_by=requested_by if record else None,
    )
    return json_answer(decision.to_dict())


@router.post("/may-contact/batch")
async def may_contact_batch(
    request: Request,
    caller: Checker,
    at: str | None = None,
    record: bool = False,
    requested_by: str | None = None,
) -> Response:
    """``ledger may-contact --batch FILE``: the body is CSV (customer,channel,purpose) or
    JSON Lines; the answer is an array of the decisions in order and the unreadable lines."""
    state = state_of(request)
    _may_record(caller, state, record)
    body = await request.body()
    if len(body) > state.max_body_bytes:
        raise problem(413, f"the body is over {state.max_body_bytes} bytes")
    moment = now_or(at)
    unreadable: list[dict[str, object]] = []

    def on_unreadable(number: int, reason: str) -> None:
        unreadable.append({"line": number, "reason": reason})

    def decide() -> list[dict[str, object]]:
        return [
            d.to_dict()
            for d in decisions.may_contact_batch(
                state.settings,
                io.BytesIO(body),
                moment,
                policy_file=None,
                record=record,
                requested_by=requested_by if record else None,
                on_unreadable=on_unreadable,
            )
        ]

    found = await run_in_threadpool(decide)
    return json_answer({"decisions": found, "unreadable": unreadable})


@router.get("/violations")
def violations(
    request: Request,
    _: Auditor,
    since: str | None = None,
    until: str | None = None,
    channel: str | None = None,
) -> Response:
    """``ledger violations --json``: its lines as one array."""
    answer = decisions.violations(
        state_of(request).settings,
        policy_file=None,
        since=parse_time(since, "since"),
        until=parse_time(until, "until", day="next"),
        channel=channel,
    )
    return json_answer([v.to_dict() for v in answer.found])


@router.get("/pressure")
def pressure(request: Request, _: Auditor, window: str = "30d", at: str | None = None) -> Response:
    """``ledger pressure --json``."""
    answer = decisions.contact_pressure(
        state_of(request).settings, now_or(at), window, parse_window(window), policy_file=None
    )
    return json_answer(answer.to_dict())


@router.get("/policy")
def policy(request: Request, _: Annotated[Caller, Depends(require("read"))]) -> Response:
    """``ledger policy show --json``."""
    return json_answer(decisions.policy_dict(decisions.policies(state_of(request).settings)))
