"""The two hot lookups, a customer's profile and a single may-contact decision, answered
in front of FastAPI's router.

Through FastAPI, a lookup that takes the library ~0.5 ms cost about as much again in the
router, the dependency solver and two hops to a worker thread. :class:`FastLookups` is a
plain ASGI middleware that recognises ``GET /v1/customers/{customer}/profile`` and ``GET
/v1/may-contact``, checks the key and calls the same answer functions the FastAPI routes
call (:func:`faces.http.query.profile_answer`, :func:`faces.http.decisions.may_contact_answer`),
so the answers, errors included, are the routes' own: an error is rendered by the app's own
exception handlers. Whatever it is not sure to read exactly as FastAPI would (a missing
parameter, a flag that is not a plain boolean, a mounted ``root_path``, any other method)
goes on to FastAPI unchanged, which answers it as before. The routes stay declared, so the
OpenAPI document still describes them, and the metrics middleware around this one counts
these requests under the same route labels.

On the embedded log with a SQLite view store, the lookup runs on the event loop: a few
indexed SQLite reads, cheaper than the hop to a thread and back. Anything that may wait
(a Kafka log, PostgreSQL, ``record=true`` which appends) runs in a worker thread as the
routes do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from faces.http import decisions, query
from faces.http.common import Caller, ServerState, authorise, token_of
from ledger.settings import SQLiteLogTarget, parse_log_url

PROFILE = "/v1/customers/{customer}/profile"
MAY_CONTACT = "/v1/may-contact"
_PROFILE_PATH = re.compile(r"^/v1/customers/([^/]+)/profile$")
# pydantic's lax booleans (case-insensitive), as FastAPI reads a ``bool`` query parameter
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_UNSURE = object()
Answer = Callable[[Caller], Response]
"""A lookup's answer, given the caller's key."""


def _flag(value: str | None) -> bool | object | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return _UNSURE


def runs_inline(state: ServerState) -> bool:
    """Whether lookups may run on the event loop: embedded log, SQLite view and key stores."""
    return (
        isinstance(parse_log_url(state.settings.log_url), SQLiteLogTarget)
        and state.settings.store_url.startswith("sqlite:")
        and state.settings.keys_url.startswith("sqlite:")  # a PostgreSQL key store may wait
    )


class FastLookups:
    """Profile and single may-contact lookups without the router (see the module's text)."""

    def __init__(self, app: ASGIApp, api: FastAPI, state: ServerState) -> None:
        self.app = app
        self.api = api
        self.state = state
        self.inline = runs_inline(state)
        self._routes: dict[str, BaseRoute] | None = None

    def _route(self, path: str) -> BaseRoute:
        """The declared route of ``path`` (what FastAPI's router puts in the scope)."""
        if self._routes is None:
            declared = [*query.router.routes, *decisions.router.routes]
            self._routes = {
                r.path: r
                for r in declared
                if isinstance(r, Route) and r.path in (PROFILE, MAY_CONTACT)
            }
        return self._routes[path]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        answer: Answer | None = None
        params: dict[str, str] = {}
        if path == MAY_CONTACT or path.startswith("/v1/customers/"):
            params = dict(
                parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            )
        writes = False
        if path == MAY_CONTACT:
            answer, writes = self._may_contact(params)
            route, needs = MAY_CONTACT, "contact-check"
        elif (found := _PROFILE_PATH.match(path)) is not None:
            answer = self._profile(found.group(1), params)
            route, needs = PROFILE, "read"
        if answer is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self._route(route)  # the metrics' route label, as the router sets it
        try:
            caller = authorise(self.state, needs, token_of(Headers(scope=scope), params))
            if self.inline and not writes:
                response = answer(caller)
            else:
                response = await run_in_threadpool(answer, caller)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(Request(scope, receive), exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Any:
        """The app's exception handler for ``exc`` (looked up by its classes, in order, as
        Starlette does), or None."""
        handlers = self.api.exception_handlers
        for kind in type(exc).__mro__:
            if kind in handlers:
                return handlers[kind]
        return None

    def _profile(self, customer: str, params: dict[str, str]) -> Answer | None:
        fresh = _flag(params.get("fresh"))
        if fresh is _UNSURE:
            return None
        assert fresh is None or isinstance(fresh, bool)
        at, as_of, recorded_by = params.get("at"), params.get("as_of"), params.get("as_recorded_by")

        def answer(caller: Caller) -> Response:
            return query.profile_answer(self.state, caller, customer, at, as_of, recorded_by, fresh)

        return answer

    def _may_contact(self, params: dict[str, str]) -> tuple[Answer | None, bool]:
        customer, channel, purpose = (
            params.get("customer"),
            params.get("channel"),
            params.get("purpose"),
        )
        record = _flag(params.get("record", "false"))
        if customer is None or channel is None or purpose is None or record is _UNSURE:
            return None, False
        assert isinstance(record, bool)
        at, requested_by = params.get("at"), params.get("requested_by")

        def answer(caller: Caller) -> Response:
            return decisions.may_contact_answer(
                self.state, caller, customer, channel, purpose, at, record, requested_by
            )

        return answer, record
