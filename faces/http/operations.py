"""For operators and orchestrators: ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from faces.http.common import json_answer, state_of

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> Response:
    """The process is up (nothing else is checked)."""
    return json_answer({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Ready for traffic: the log and the view store can be read and the views are at most
    ``--ready-max-lag`` records behind the log (503 with the reasons otherwise)."""
    state = state_of(request)
    report = await run_in_threadpool(state.metrics.projectors.report)
    if report is None:
        return json_answer(
            {"status": "unavailable", "problems": ["the log or the view store cannot be read"]},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    lag = sum(p.lag_events for p in report.status.partitions)
    problems = list(report.problems)
    if lag > state.ready_max_lag:
        problems.append(f"the views are {lag} records behind the log (limit {state.ready_max_lag})")
    body = {"status": "unready" if problems else "ready", "lag_events": lag, "problems": problems}
    return json_answer(body, status_code=503 if problems else 200)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format: requests, ingest outcomes, projector positions and lag."""
    registry = state_of(request).metrics.registry
    text = await run_in_threadpool(generate_latest, registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
