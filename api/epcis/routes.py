"""EPCIS 2.0 REST binding, as far as looptrack's events go (SPEC §8, docs/epcis.md):
`GET /v1/epcis/events` exports stored events as ObjectEvents in an EPCISQueryDocument,
`POST /v1/epcis/capture` takes ObjectEvents in through the broker and the ingest worker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.body_limit import read_bounded
from api.dependencies import MAX_PAGE, Conn, RegistryReader, require, scoped_brand, settings
from api.epcis.capture import (
    MAX_CAPTURE_BYTES,
    MAX_CAPTURE_EVENTS,
    ErrorBehaviour,
    capture_job,
    payloads,
    plan_capture,
    read_document,
    registered_sites,
    rollback_problem,
)
from api.epcis.export import (
    LIST_PARAMETERS,
    SUPPORTED_PARAMETERS,
    event_query,
    find_events,
    object_event,
    query_document,
    split_values,
)
from api.epcis.vocabulary import Vocabulary
from api.events import decode_cursor, encode_cursor
from api.problems import ERROR_RESPONSES, Problem
from api.time_window import Instant
from schemas.api_keys import Principal, Role
from schemas.publisher import PublishError
from schemas.settings import Settings

router = APIRouter(prefix="/v1/epcis", tags=["epcis"], responses=ERROR_RESPONSES)

DEFAULT_PER_PAGE = 30
"""perPage when the client gives none: the REST binding's default."""
EPCIS_HEADERS = {"GS1-EPCIS-Version": "2.0", "GS1-CBV-Version": "2.0"}
Capturer = Annotated[Principal, Depends(require(Role.OPERATOR, Role.DEVICE))]

_LIST_PARAMETER_DOCS: list[dict[str, Any]] = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "description": "one or more values, repeated or separated by |",
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
    }
    for name in LIST_PARAMETERS
]
_DOCUMENT_SCHEMA = {
    "type": "object",
    "required": ["@context", "type", "schemaVersion", "creationDate", "epcisBody"],
    "properties": {"type": {"type": "string", "enum": ["EPCISQueryDocument"]}},
}
_CAPTURE_BODY_SCHEMA = {
    "description": "An EPCISDocument or EPCISQueryDocument of ObjectEvents, one ObjectEvent, "
    "or a JSON array of ObjectEvents (docs/epcis.md)",
    "type": ["object", "array"],
}
_CAPTURE_JOB_SCHEMA = {
    "type": "object",
    "required": ["captureID", "createdAt", "running", "success", "eventIDs", "errors"],
    "properties": {
        "captureID": {"type": "string"},
        "createdAt": {"type": "string", "format": "date-time"},
        "running": {"type": "boolean"},
        "success": {"type": "boolean"},
        "captureErrorBehaviour": {"type": "string", "enum": [b.value for b in ErrorBehaviour]},
        "eventIDs": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


@router.get(
    "/events",
    response_class=JSONResponse,
    responses={
        200: {
            "description": "An EPCISQueryDocument of ObjectEvents, newest first. While more "
            'follow, the Link header (rel="next") holds the next page\'s URL.',
            "headers": {"Link": {"schema": {"type": "string"}}},
            "content": {"application/json": {"schema": _DOCUMENT_SCHEMA}},
        }
    },
    openapi_extra={"parameters": _LIST_PARAMETER_DOCS},
)
def get_events(
    request: Request,
    conn: Conn,
    caller: RegistryReader,
    config: Annotated[Settings, Depends(settings)],
    ge_event_time: Annotated[Instant | None, Query(alias="GE_eventTime")] = None,
    lt_event_time: Annotated[Instant | None, Query(alias="LT_eventTime")] = None,
    per_page: Annotated[int, Query(alias="perPage", ge=1, le=MAX_PAGE)] = DEFAULT_PER_PAGE,
    next_page_token: Annotated[str | None, Query(alias="nextPageToken", max_length=200)] = None,
) -> JSONResponse:
    """Stored events as EPCIS 2.0 ObjectEvents (operator; a brand key sees its own
    products' events only), filtered by the standard's query parameters."""
    unsupported = sorted(set(request.query_params) - SUPPORTED_PARAMETERS)
    if unsupported:
        raise Problem(
            422,
            "epcis-query",
            f"unsupported query parameter {unsupported[0]!r} "
            f"(supported: {', '.join(sorted(SUPPORTED_PARAMETERS))})",
        )
    lists = {
        name: split_values(name, request.query_params.getlist(name))
        for name in LIST_PARAMETERS
        if name in request.query_params
    }
    vocabulary = Vocabulary(config.public_base_url)
    query = event_query(lists, ge_event_time, lt_event_time, vocabulary, config.public_base_url)
    after = decode_cursor(next_page_token) if next_page_token else None
    brand, _ = scoped_brand(caller, None)
    rows, last = find_events(conn, query, brand, after, per_page)
    zone = ZoneInfo(config.timezone)
    events = [object_event(row, vocabulary, config.public_base_url, zone) for row in rows]
    headers = dict(EPCIS_HEADERS)
    if last is not None:
        following = request.url.include_query_params(nextPageToken=encode_cursor(*last))
        headers["Link"] = f'<{following}>; rel="next"'
    document = query_document(events, vocabulary, datetime.now(UTC))
    return JSONResponse(document, headers=headers)


@router.post(
    "/capture",
    status_code=202,
    response_class=JSONResponse,
    responses={
        202: {
            "description": "Relayed to the broker: the ingest worker stores the events shortly "
            "(eventIDs), and dead-letters those listed in errors with a deadLetterReason.",
            "content": {"application/json": {"schema": _CAPTURE_JOB_SCHEMA}},
        }
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _CAPTURE_BODY_SCHEMA}},
        }
    },
)
async def capture(
    request: Request,
    conn: Conn,
    caller: Capturer,
    config: Annotated[Settings, Depends(settings)],
    behaviour: Annotated[
        ErrorBehaviour, Header(alias="GS1-Capture-Error-Behaviour")
    ] = ErrorBehaviour.ROLLBACK,
) -> JSONResponse:
    """Captures ObjectEvents: each item becomes a looptrack event of the readPoint's device,
    relayed to the broker so the ingest worker validates and stores it as if the device
    had published it. With `rollback` (the default) nothing is relayed unless every event
    can be stored (422 naming each event and field otherwise); with `proceed` the good
    ones are relayed and the bad ones reported."""
    raw = await read_bounded(request, MAX_CAPTURE_BYTES)
    document = read_document(raw)
    plan = await run_in_threadpool(
        plan_capture,
        document,
        caller,
        Vocabulary(config.public_base_url),
        config.public_base_url,
        lambda device_ids: registered_sites(conn, device_ids),
        datetime.now(UTC),
    )
    if behaviour is ErrorBehaviour.ROLLBACK and plan.all_errors:
        raise rollback_problem(plan, len(document.events))
    messages = list(payloads(plan.mapped))
    for sent, (device_id, payload) in enumerate(messages):
        try:
            await run_in_threadpool(
                request.app.state.publisher.publish, config.events_topic(device_id), payload
            )
        except PublishError as exc:
            raise Problem(
                503,
                "broker-unavailable",
                f"{sent} of {len(messages)} messages relayed, then: {exc}. Capturing the same "
                "document again is safe: its events keep their ids",
            ) from None
    headers = {
        **EPCIS_HEADERS,
        "GS1-Capture-Error-Behaviour": behaviour.value,
        "GS1-EPCIS-Capture-Limit": str(MAX_CAPTURE_EVENTS),
        "GS1-EPCIS-Capture-File-Size-Limit": str(MAX_CAPTURE_BYTES),
    }
    job = capture_job(plan, behaviour, running=bool(messages), created=datetime.now(UTC))
    return JSONResponse(job, status_code=202, headers=headers)
