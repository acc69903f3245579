"""Read endpoints: profile, contacts, contacts top, customers, history, project status.

Each calls the application function the CLI command calls and answers its ``--json``
(JSON Lines commands: a JSON array of the same objects, in the same order)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from application import reading, views
from application.as_of import customer_contacts, customer_profile
from application.personal import without_personal_event, without_personal_profile
from application.status import projection_status
from faces.http.common import (
    Caller,
    ServerState,
    json_answer,
    may_see_personal,
    now_or,
    parse_time,
    parse_window,
    require,
    state_of,
)
from projections.frequency import Window

router = APIRouter(prefix="/v1", tags=["query"])
Reader = Annotated[Caller, Depends(require("read"))]


@router.get("/customers/{customer}/profile")
def profile(
    request: Request,
    caller: Reader,
    customer: str,
    at: str | None = None,
    as_of: str | None = None,
    as_recorded_by: str | None = None,
    fresh: bool | None = None,
) -> Response:
    """``ledger profile CUSTOMER --json`` (``at``, ``as_of``, ``as_recorded_by``, ``fresh``)."""
    return profile_answer(state_of(request), caller, customer, at, as_of, as_recorded_by, fresh)


def profile_answer(
    state: ServerState,
    caller: Caller,
    customer: str,
    at: str | None,
    as_of: str | None,
    as_recorded_by: str | None,
    fresh: bool | None,
) -> Response:
    """The profile route's answer (also given by :mod:`faces.http.fast`, without the router)."""
    answer = customer_profile(
        state.settings,
        customer,
        at=parse_time(at, "at"),
        until=parse_time(as_of, "as_of", day="end"),
        recorded_by=parse_time(as_recorded_by, "as_recorded_by", day="end"),
        fresh=fresh,
    ).to_dict()
    if not may_see_personal(caller, state):
        answer = without_personal_profile(answer)
    return json_answer(answer)


@router.get("/customers/{customer}/contacts")
def contacts(
    request: Request,
    _: Reader,
    customer: str,
    window: str | None = None,
    at: str | None = None,
    as_of: str | None = None,
    as_recorded_by: str | None = None,
    fresh: bool | None = None,
) -> Response:
    """``ledger contacts CUSTOMER --json`` (default windows 24h, 7d, 30d, 90d)."""
    lengths = [window] if window else ["24h", "7d", "30d", "90d"]
    answer = customer_contacts(
        request.app.state.ledger.settings,
        customer,
        {w: parse_window(w) for w in lengths},
        at=parse_time(at, "at"),
        until=parse_time(as_of, "as_of", day="end"),
        recorded_by=parse_time(as_recorded_by, "as_recorded_by", day="end"),
        fresh=fresh,
    )
    return json_answer(answer.to_dict())


@router.get("/customers/{customer}/history")
def history(
    request: Request,
    caller: Reader,
    customer: str,
    until: str | None = None,
    as_recorded_by: str | None = None,
) -> Response:
    """``ledger history CUSTOMER --json``: its lines as one array."""
    found = reading.history(
        request.app.state.ledger.settings,
        customer,
        parse_time(until, "until", day="end"),
        parse_time(as_recorded_by, "as_recorded_by", day="end"),
    )
    revealer = reading.revealer(request.app.state.ledger.settings)
    lines = [reading.record_dict(r, True, revealer) for r in found.records]
    if not may_see_personal(caller, state_of(request)):
        lines = [without_personal_event(line) for line in lines]
    return json_answer(lines)


@router.get("/contacts/top")
def contacts_top(
    request: Request,
    _: Reader,
    window: str = "7d",
    channel: str | None = None,
    direction: Literal["inbound", "outbound"] | None = None,
    purpose: Literal["service", "transactional", "marketing"] | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 20,
    at: str | None = None,
) -> Response:
    """``ledger contacts top --json``."""
    now = now_or(at)
    rows = views.most_contacted(
        request.app.state.ledger.settings,
        Window.rolling(now, parse_window(window)),
        channel=channel,
        direction=direction,
        purpose=purpose,
        limit=limit,
    )
    return json_answer(views.most_contacted_dicts(rows))


@router.get("/customers")
def customers(
    request: Request,
    _: Reader,
    status: Literal["active", "passive", "lapsed", "prospect"] | None = None,
    risk: bool = False,
    limit: Annotated[int | None, Query(ge=1)] = None,
    at: str | None = None,
) -> Response:
    """``ledger customers --json``."""
    found = views.customers(
        request.app.state.ledger.settings, now_or(at), status=status, at_risk=risk, limit=limit
    )
    return json_answer(found)


@router.get("/project/status")
def project_status(request: Request, _: Reader) -> Response:
    """``ledger project status --json``."""
    return json_answer(projection_status(request.app.state.ledger.settings).to_dict())
