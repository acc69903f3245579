"""``POST /v1/events``: the CloudEvents HTTP binding, in its three modes.

* **binary**: the attributes in ``ce-*`` headers, the body is ``data`` (``Content-Type`` is
  its ``datacontenttype``; JSON);
* **structured**: ``Content-Type: application/cloudevents+json``, the body is one event;
* **batched**: ``Content-Type: application/cloudevents-batch+json``, the body is an array.

Every event is validated and appended by :mod:`application.ingest`, as ``ledger import``
would (strict JSON, the contract, ids as idempotency keys), and answered per event. A body
over the size limit or a batch over the event limit is refused whole with 413; a log that
cannot be reached, with 503 and ``Retry-After``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from application.ingest import Document, IngestAnswer, append_documents
from faces.http.common import Caller, json_answer, problem, require, state_of
from ledger import strict

router = APIRouter(prefix="/v1", tags=["ingest"])

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise problem(413, f"the body is over the limit of {limit} bytes", limit_bytes=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise problem(413, f"the body is over the limit of {limit} bytes", limit_bytes=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _strict(body: bytes) -> Any:
    try:
        return strict.loads(body)
    except strict.StrictJSONError as exc:
        raise problem(400, f"the body is not valid JSON: {exc}") from None


def _binary(request: Request, body: bytes, media_type: str) -> dict[str, Any]:
    headers = request.headers
    if "ce-specversion" not in headers:
        raise problem(
            415,
            f"Content-Type {media_type or '(none)'}: send {STRUCTURED}, {BATCH}, or a binary-mode "
            "event (ce-* headers with an application/json body)",
        )
    if media_type != "application/json":
        raise problem(415, "a binary-mode event's body (data) must be application/json")
    document: dict[str, Any] = {"datacontenttype": "application/json", "data": _strict(body)}
    for name, value in headers.items():
        if name.startswith("ce-"):
            attribute = name.removeprefix("ce-")
            document[attribute] = value
    return document


def _documents(request: Request, body: bytes, max_events: int) -> tuple[list[Document], bool]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == BATCH:
        events = _strict(body)
        if not isinstance(events, list):
            raise problem(400, "a batch must be a JSON array of events")
        if len(events) > max_events:
            raise problem(
                413,
                f"the batch has {len(events)} events; at most {max_events}",
                limit_events=max_events,
            )
        return events, True
    if media_type == STRUCTURED:
        return [body], False
    return [_binary(request, body, media_type)], False


@router.post("/events", status_code=200)
async def ingest(request: Request, _: Annotated[Caller, Depends(require("publish"))]) -> Response:
    """Append one event (binary or structured mode) or a batch, each answered."""
    state = state_of(request)
    body = await _body(request, state.max_body_bytes)
    documents, batched = _documents(request, body, state.max_batch_events)
    answer: IngestAnswer = await run_in_threadpool(append_documents, state.settings, documents)
    for result in answer.results:
        state.metrics.events.labels(result.status, result.event_type or "(unknown)").inc()
    if batched:
        return json_answer(answer.to_dict())
    (result,) = answer.results
    code = {"accepted": 201, "duplicate": 200, "rejected": 422}[result.status]
    return json_answer(result.to_dict(), status_code=code)
