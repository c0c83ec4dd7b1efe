"""RFC 9457 problem details: every 4xx/5xx the API returns is application/problem+json
(and, for a browser opening a page, the same problem as an HTML page)."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from psycopg_pool import PoolTimeout
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
# Problem type URIs are relative references under the API's own namespace.
TYPE_BASE = "/problems/"


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, as every error of this API is answered."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, str]] | None = None


def _documented(status: int, meaning: str) -> dict[str, Any]:
    return documented(meaning, ProblemDetails)


def documented(meaning: str, model: type[BaseModel]) -> dict[str, Any]:
    """An OpenAPI response of problem+json shaped as `model` (ProblemDetails or one with
    more members), its nested models written in place: the document has no `$defs`."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inlined(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inlined(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inlined(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inlined(value) for value in node]
        return node

    return {"description": meaning, "content": {PROBLEM_JSON: {"schema": inlined(schema)}}}


# For the OpenAPI document: the errors every authenticated endpoint may answer.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _documented(401, "Missing, unknown, revoked or expired API key"),
    403: _documented(403, "The key's role or binding does not allow this"),
    404: _documented(404, "No such resource (or not visible to this key)"),
    413: _documented(413, "Payload too large"),
    429: _documented(429, "Too many unknown API keys from this client: see Retry-After"),
    422: _documented(422, "Invalid parameter or body; detail names the field and rule"),
    503: _documented(503, "A dependency (database, broker) is unavailable"),
}


class Problem(Exception):
    """A domain error with one HTTP status and a specific, human-readable detail."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = headers  # e.g. Retry-After
        self.extra = extra


# Another representation of a problem for the requests that want one (the pages' HTML for
# a browser): given the request, the problem and its headers, a response, or None to
# leave it problem+json.
ProblemPage = Callable[[Request, ProblemDetails, dict[str, str] | None], Response | None]


def problem_body(
    status: int, slug: str, detail: str, instance: str, **extra: Any
) -> dict[str, Any]:
    """The members of a problem (those of `ProblemDetails`, then any extension members)."""
    return {
        "type": TYPE_BASE + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }


def problem_response(
    status: int,
    slug: str,
    detail: str,
    instance: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_body(status, slug, detail, instance, **extra)
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    # ("body", "deposit") → "deposit"; ("query", "limit") → "limit"
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 else [str(p) for p in loc]
    return ".".join(parts)


def install(app: FastAPI, page: ProblemPage | None = None) -> None:
    """Route every error through one function choosing its representation: `page`'s,
    where it takes the request, else problem+json."""

    def respond(
        request: Request,
        status: int,
        slug: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> Response:
        instance = request.url.path
        if page is not None:
            problem = ProblemDetails(**problem_body(status, slug, detail, instance, **extra))
            shown = page(request, problem, headers)
            if shown is not None:
                return shown
        return problem_response(status, slug, detail, instance, headers, **extra)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return respond(request, exc.status, exc.slug, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": _field(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()[:20]
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return respond(request, 422, "validation", detail, errors=errors)

    @app.exception_handler(psycopg.errors.DeadlockDetected)
    @app.exception_handler(psycopg.errors.SerializationFailure)
    async def _rolled_back(request: Request, exc: Exception) -> Response:
        # A deadlock or serialization failure with concurrent work (e.g. the ingest
        # worker counting the product being re-assigned): nothing was changed.
        detail = (
            "the request met a concurrent change and was rolled back, nothing was changed: "
            "send it again"
        )
        return respond(request, 503, "try-again", detail, headers={"Retry-After": "1"})

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _unavailable(request: Request, exc: Exception) -> Response:
        return respond(
            request,
            503,
            "database-unavailable",
            "the database could not complete the request right now: try again shortly",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        slug = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "-")
        # Starlette's own headers (Allow of a 405) go with it.
        headers = dict(exc.headers) if exc.headers else None
        return respond(request, exc.status_code, slug, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # A bug. Starlette raises it again once this answer is sent, so the server logs
        # it with its traceback; the answer names nothing of it.
        detail = "the server met an unexpected error; it is logged for the operators"
        return respond(request, 500, "internal-error", detail)
