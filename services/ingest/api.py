"""The feed-facing HTTP API: ``POST /v1/reports`` and ``POST /v1/reports/batch``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.reports import (
    BatchAccepted,
    BatchItemResult,
    ItemError,
    ReportAccepted,
    ReportIn,
    ReportReceived,
)
from services.ingest.feeds import FeedAuth
from services.ingest.intake import Refused, receive, validate
from services.ingest.limits import TokenBucket, retry_after
from services.ingest.metrics import IngestMetrics
from services.ingest.publisher import ReportPublisher, Status, Unavailable

MAX_BATCH = 1_000
INLINE_ITEMS = 50
NDJSON = "application/x-ndjson"

router = APIRouter()
_bearer = HTTPBearer(auto_error=False)


class Problem(BaseModel):
    detail: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No bearer token, or one no feed has."},
    413: {"model": Problem, "description": "Body larger than TOCSIN_INGEST_MAX_BODY_BYTES."},
    429: {"model": Problem, "description": "The feed's rate limit; see Retry-After."},
    503: {
        "model": Problem,
        "description": "Kafka did not take the reports; nothing was "
        "accepted; retry after Retry-After seconds.",
    },
}


async def unparsable_body_is_422(request: Request, exc: Exception) -> Response:
    """FastAPI answers 400 to a body it cannot decode; the brief's answer for bad input is
    422 naming the field (here: the body)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == status.HTTP_400_BAD_REQUEST:
        return JSONResponse(
            {
                "detail": [
                    {"loc": ["body"], "msg": "body is not valid UTF-8 JSON", "type": "json_invalid"}
                ]
            },
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    return await http_exception_handler(request, exc)


async def feed_id(  # async: a plain def would run in the thread pool on every request
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    auth: FeedAuth = request.app.state.auth
    found = auth.feed_for(credentials.credentials) if credentials else None
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or unknown bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


Feed = Annotated[str, Depends(feed_id)]


def _limit(request: Request, feed: str, cost: int) -> None:
    buckets: dict[str, TokenBucket] = request.app.state.buckets
    wait = buckets[feed].take(cost)
    if wait:
        metrics: IngestMetrics = request.app.state.metrics
        metrics.rate_limited.labels(feed).inc()
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"feed {feed} is over its rate limit",
            headers={"Retry-After": retry_after(wait)},
        )


async def _submit(request: Request, feed: str, reports: list[ReportReceived]) -> list[Status]:
    publisher: ReportPublisher = request.app.state.publisher
    try:
        return await publisher.submit(feed, reports)
    except Unavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"{exc.reason}; nothing was accepted, retry later",
            headers={"Retry-After": retry_after(exc.retry_after)},
        ) from exc


def _answer(model: BaseModel) -> Response:
    """A 202 serialised by pydantic-core at once: the routes declare their models for the
    OpenAPI document, and a returned ``Response`` skips FastAPI re-validating them."""
    return Response(
        model.model_dump_json(), status.HTTP_202_ACCEPTED, media_type="application/json"
    )


@router.post(
    "/v1/reports",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReportAccepted,
    responses=_ERRORS,
    summary="Post one report",
)
async def post_report(request: Request, feed: Feed, report: ReportIn) -> Response:
    """Accepted (or recognised as a duplicate) only once Kafka acknowledged the report."""
    _limit(request, feed, 1)
    try:
        received = receive(feed, report)
    except Refused as exc:
        metrics: IngestMetrics = request.app.state.metrics
        metrics.reports.labels(feed, "rejected").inc()
        raise RequestValidationError(
            [{"loc": ["body", *e.loc], "msg": e.msg, "type": e.type} for e in exc.errors]
        ) from None
    [outcome] = await _submit(request, feed, [received])
    return _answer(ReportAccepted(id=received.id, status=outcome))


_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "description": f"A JSON array of 1–{MAX_BATCH} reports, or the same as NDJSON "
        f"(one report per line) with Content-Type: {NDJSON}.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/ReportIn"},
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                }
            },
        },
    }
}


@router.post(
    "/v1/reports/batch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchAccepted,
    responses={
        **_ERRORS,
        422: {
            "description": "Not a JSON array / NDJSON, too many items, or no valid item.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
            },
        },
    },
    openapi_extra=_BATCH_BODY,
    summary="Post up to 1,000 reports; one result per item",
)
async def post_batch(request: Request, feed: Feed) -> Response:
    """Valid items are accepted even when some of their neighbours are rejected; the
    answer is 422 only when the body is unusable or no item is valid."""
    items = _items(await request.body(), request.headers.get("content-type", ""))
    _limit(request, feed, len(items))
    if len(items) > INLINE_ITEMS:  # normalising a large batch takes a while: off the loop
        valid, results = await asyncio.to_thread(_received, feed, items)
    else:
        valid, results = _received(feed, items)
    metrics: IngestMetrics = request.app.state.metrics
    metrics.reports.labels(feed, "rejected").inc(len(results))
    if not valid:
        raise RequestValidationError(
            [
                {"loc": ["body", r.index, *e.loc], "msg": e.msg, "type": e.type}
                for r in results
                for e in r.errors
            ]
        )
    outcomes = await _submit(request, feed, [r for _, r in valid])
    results += [
        BatchItemResult(index=i, id=r.id, status=o)
        for (i, r), o in zip(valid, outcomes, strict=True)
    ]
    results.sort(key=lambda r: r.index)
    return _answer(
        BatchAccepted(
            accepted=sum(r.status == "accepted" for r in results),
            duplicate=sum(r.status == "duplicate" for r in results),
            rejected=sum(r.status == "rejected" for r in results),
            results=results,
        )
    )


def _received(
    feed: str, items: list[Any]
) -> tuple[list[tuple[int, ReportReceived]], list[BatchItemResult]]:
    """Valid items as reports (with their index), and the rejected items' results."""
    valid: list[tuple[int, ReportReceived]] = []
    rejected: list[BatchItemResult] = []
    now = datetime.now(UTC)
    for index, item in enumerate(items):
        try:
            if isinstance(item, Refused):
                raise item
            valid.append((index, receive(feed, validate(item), now)))
        except Refused as exc:
            rejected.append(BatchItemResult(index=index, status="rejected", errors=exc.errors))
    return valid, rejected


def _items(body: bytes, content_type: str) -> list[Any]:
    """The batch's items, from a JSON array or NDJSON lines (blank lines ignored)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in (NDJSON, "application/jsonl"):
        items = [_line(line) for line in body.splitlines() if line.strip(b" \t\r")]
        if not items:
            raise RequestValidationError(
                [{"loc": ["body"], "msg": "no reports in the NDJSON body", "type": "too_short"}]
            )
        return _bounded(items)
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestValidationError(
            [{"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json_invalid"}]
        ) from None
    if not isinstance(items, list):
        raise RequestValidationError(
            [{"loc": ["body"], "msg": "expected a JSON array of reports", "type": "list_type"}]
        )
    return _bounded(items)


def _line(line: bytes) -> Any:
    """One NDJSON line; a broken line refuses that item only."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return Refused([ItemError(loc=[], msg=f"invalid JSON: {exc}", type="json_invalid")])


def _bounded(items: list[Any]) -> list[Any]:
    if not 1 <= len(items) <= MAX_BATCH:
        raise RequestValidationError(
            [
                {
                    "loc": ["body"],
                    "msg": f"a batch holds 1 to {MAX_BATCH} reports, got {len(items)}",
                    "type": "too_long" if items else "too_short",
                }
            ]
        )
    return items
