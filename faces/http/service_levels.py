"""Service-level endpoints (issue 13 over HTTP): figures per day/week/agent/queue and their
chart, SLA breaches, churn after bad service.

Each calls the application function the CLI command calls (:mod:`application.service_levels`)
and answers its ``--json`` (``sla breaches``, JSON Lines in the CLI: a JSON array of the same
objects). Unreadable arguments get 422 naming the parameter. The calendar and targets are
those of the policy the server is running with.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from application import service_levels as use_cases
from faces.charts import service_level_chart
from faces.http.common import Caller, json_answer, require, state_of
from ledger.vocabulary import Channel

router = APIRouter(prefix="/v1", tags=["service levels"])
Reader = Annotated[Caller, Depends(require("read"))]
By = Literal["day", "week", "agent", "queue"]


def _report(
    request: Request,
    _: Reader,
    since: str | None = None,
    until: str | None = None,
    channel: Channel | None = None,
    by: By = "day",
    as_of: str | None = None,
) -> use_cases.ServiceLevelReport:
    """The figures both service-level routes answer with (their query parameters: the
    CLI's options; ``since``/``until``: RFC 3339 or a local date of the policy's calendar)."""
    return use_cases.service_levels_of(
        state_of(request).settings,
        use_cases.Question(as_of),
        since=since,
        until=until,
        channel=None if channel is None else channel.value,
        by=by,
    )


Report = Annotated[use_cases.ServiceLevelReport, Depends(_report)]


@router.get("/service-levels")
def service_levels(report: Report) -> Response:
    """``ledger service-levels --json``: calls answered in time, abandonment, waits,
    first-reply times in business hours, complaints against SLA, CSAT."""
    return json_answer(report.to_dict())


@router.get("/service-levels/chart", response_class=Response)
def service_levels_chart(report: Report) -> Response:
    """``ledger service-levels --chart``: the SVG chart of service level and abandonment
    per row."""
    title = f"Service level and abandonment per {report.by} ({report.zone})"
    chart = service_level_chart(report.groups, report.rules.target, title)
    return Response(chart, media_type="image/svg+xml")


@router.get("/sla/breaches")
def sla_breaches(
    request: Request,
    _: Reader,
    open: bool = False,  # the CLI's --open
    since: str | None = None,
    as_of: str | None = None,
) -> Response:
    """``ledger sla breaches --json`` (``open=true``: only those still unanswered), most
    overdue first."""
    answer = use_cases.sla_breaches_of(
        state_of(request).settings, use_cases.Question(as_of), open_only=open, since=since
    )
    return json_answer(answer.to_dicts())


@router.get("/churn/after-bad-service")
def churn_after_bad_service(request: Request, _: Reader, as_of: str | None = None) -> Response:
    """``ledger churn after-bad-service --json``: customers who stopped buying after bad
    service, against those whose service was fine, with the definition."""
    answer = use_cases.churn_of(state_of(request).settings, use_cases.Question(as_of))[1]
    return json_answer(answer)
