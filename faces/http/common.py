"""What the HTTP routers share: the server's state, API-key checks, JSON answers that are
byte for byte the CLI's ``--json``, and query parameters parsed by the CLI's own rules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import click
import orjson
from fastapi import HTTPException, Request
from fastapi.responses import Response
from starlette.datastructures import Headers

from application.api_keys import SCOPES, ApiKey, KeyRing
from faces.cli import options
from faces.http.metrics import HttpMetrics
from ledger.settings import Settings

JSON = "application/json"


@dataclass
class ServerState:
    """One server process: its settings, keys, limits and metrics."""

    settings: Settings
    keys: KeyRing
    metrics: HttpMetrics
    auth: bool
    max_body_bytes: int
    max_batch_events: int
    ready_max_lag: int
    """``/readyz`` fails when the views are more records than this behind the log."""


def state_of(request: Request) -> ServerState:
    state = request.app.state.ledger
    assert isinstance(state, ServerState)
    return state


def json_answer(
    value: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``value`` serialised exactly as the CLI's ``--json`` does (orjson)."""
    return Response(orjson.dumps(value), status_code=status_code, media_type=JSON, headers=headers)


def problem(status_code: int, title: str, **extra: Any) -> HTTPException:
    return HTTPException(status_code, detail={"error": title, **extra})


def token_of(headers: Headers, query: Mapping[str, str]) -> str | None:
    """The API key a request carries: ``Authorization: Bearer``, ``X-API-Key`` or ``?key=``."""
    header = headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return headers.get("x-api-key") or query.get("key")


Caller = ApiKey | None
"""The key a request came with (None when the server runs without auth)."""


def authorise(state: ServerState, scope: str, token: str | None) -> Caller:
    """The key ``token`` is, which must allow ``scope``: 401 without a valid key, 403
    naming the missing scope (raised as :class:`HTTPException`)."""
    if not state.auth:
        return None
    if not token:
        raise HTTPException(
            401,
            detail={"error": "an API key is required", "required_scope": scope},
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = state.keys.check(token)
    if key is None:
        raise HTTPException(
            401,
            detail={"error": "unknown or revoked API key", "required_scope": scope},
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if not key.allows(scope):
        raise problem(
            403,
            f"this API key lacks the scope {scope!r}",
            required_scope=scope,
            key_scopes=list(key.scopes),
        )
    return key


def require(scope: str) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: the request's key, which must allow ``scope`` (see :func:`authorise`).
    Checked on the event loop: a stat of the key file and a SHA-256, no thread hop."""
    assert scope in SCOPES

    async def check(request: Request) -> Caller:
        return authorise(state_of(request), scope, token_of(request.headers, request.query_params))

    return check


def may_see_personal(caller: Caller, state: ServerState) -> bool:
    return not state.auth or (caller is not None and caller.allows("personal"))


def _bad(name: str) -> Callable[[click.BadParameter], HTTPException]:
    def convert(exc: click.BadParameter) -> HTTPException:
        return problem(422, f"{name}: {exc.format_message()}", parameter=name)

    return convert


def parse_time(value: str | None, name: str, *, day: options.DayBound = "start") -> datetime | None:
    """A query parameter read as the CLI reads ``--name`` (RFC 3339 or a bare date)."""
    try:
        return options.parse_time(value, f"--{name}", day=day)
    except click.BadParameter as exc:
        raise _bad(name)(exc) from None


def parse_window(value: str, name: str = "window") -> timedelta:
    try:
        return options.parse_window(value)
    except click.BadParameter as exc:
        raise _bad(name)(exc) from None


def now_or(at: str | None) -> datetime:
    try:
        return options.now_or(at)
    except click.BadParameter as exc:
        raise _bad("at")(exc) from None
