"""The ASGI application of ``ledger serve``: :func:`create_app` assembles the routers by
area (ingest, query, decisions, operations, dashboard), the API-key checks, error answers
and metrics. Stateless: every request reads the log and the views afresh (through
connections each server thread keeps open), so any number of processes can serve one
ledger."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from application import wiring
from application.api_keys import KeyRing
from faces.http import dashboard, decisions, ingest, operations, query, service_levels
from faces.http.common import ServerState, json_answer
from faces.http.fast import FastLookups
from faces.http.metrics import HttpMetrics
from ledger.errors import KeyStoreUnavailable, LedgerError, LogUnavailable, NotFound
from ledger.redact import redact
from ledger.settings import Settings

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_BATCH_EVENTS = 10_000
RETRY_AFTER_SECONDS = 5
SERVER_THREADS = 4
"""Threads per server process that run the application functions (anyio's default: 40).
Each keeps its own log, store and key store connections with their page caches, so each
adds memory; on the embedded log the hot lookups run on the event loop anyway, and more
threads than cores only queue for the GIL. Enough to overlap PostgreSQL and Kafka waits."""


class Measured:
    """Counts every request by route and status and times it (a plain ASGI middleware:
    Starlette's ``BaseHTTPMiddleware`` costs more than a profile lookup)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sent(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            path = getattr(scope.get("route"), "path", "(unmatched)")
            method = scope["method"]
            self.metrics.requests.labels(method, path, str(status[0])).inc()
            self.metrics.latency.labels(method, path).observe(time.perf_counter() - started)


def create_app(
    settings: Settings,
    *,
    auth: bool = True,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_batch_events: int = MAX_BATCH_EVENTS,
    ready_max_lag: int = 10_000,
    threads: int = SERVER_THREADS,
    fast_lookups: bool = True,
) -> FastAPI:
    """The HTTP face of the ledger ``settings`` describes (``auth=False``: no API keys
    asked for; for a laptop only; ``fast_lookups=False``: profiles and single decisions
    through FastAPI's router too, as a reference for :mod:`faces.http.fast`)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Each server thread keeps its own log and store connections (and SQLite page
        # caches): a few threads bound the memory; more would only queue on 2 cores.
        to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="touchpoint-ledger",
        description="Touchpoints in (CloudEvents), profiles, contacts and contact-policy "
        "decisions out: the same answers as the `ledger` CLI's --json.",
        version="1",
    )
    state = ServerState(
        settings=settings,
        keys=KeyRing(settings),
        metrics=HttpMetrics(settings),
        auth=auth,
        max_body_bytes=max_body_bytes,
        max_batch_events=max_batch_events,
        ready_max_lag=ready_max_lag,
    )
    app.state.ledger = state
    wiring.keep_open()  # one log and one store per server thread, not one per request
    for area in (ingest, query, decisions, service_levels, operations, dashboard):
        app.include_router(area.router)

    if fast_lookups:
        app.add_middleware(FastLookups, api=app, state=state)
    app.add_middleware(Measured, metrics=state.metrics)  # outermost: counts fast lookups too

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail)}
        return json_answer(detail, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        problems = [f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()]
        return json_answer({"error": "; ".join(problems), "problems": problems}, 422)

    @app.exception_handler(LogUnavailable)
    @app.exception_handler(KeyStoreUnavailable)
    async def unavailable(_: Request, exc: LogUnavailable | KeyStoreUnavailable) -> Response:
        wiring.forget_kept()  # reconnect on the next request
        return json_answer(
            {"error": " ".join(redact(str(exc)).split())},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> Response:
        return json_answer({"error": str(exc)}, status_code=404)

    @app.exception_handler(LedgerError)
    async def refused(_: Request, exc: LedgerError) -> Response:
        return json_answer({"error": " ".join(redact(str(exc)).split())}, status_code=422)

    return app
