"""`GET /health`: is the database answering, and is the API logged in to the broker (the
connection it relays device posts and dead-letter replays over)?"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter()

# Each dependency gets this long to answer before it counts as down (s).
HEALTH_TIMEOUT_S = 2.0


def _database_ok(request: Request) -> bool:
    try:
        with request.app.state.pool.connection(timeout=HEALTH_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
        return True
    except (psycopg.Error, OSError):  # the pool's timeout is a psycopg.Error
        return False


def _broker_state(request: Request) -> tuple[str, str | None]:
    """The API's own broker connection: "ok", "refused" (the broker answers but refuses
    the login, with its reason) or "unreachable". A connection being made at start gets
    HEALTH_TIMEOUT_S to come up."""
    connected, refused = request.app.state.publisher.state(HEALTH_TIMEOUT_S)
    if connected:
        return "ok", None
    return ("refused", refused) if refused else ("unreachable", None)


@router.get(
    "/health",
    tags=["health"],
    responses={
        200: {"description": "The database answers and the API is logged in to the broker"},
        503: {
            "description": "One of them is not: `broker` is `refused` (with "
            "`broker_error`, the broker's reason) or `unreachable`"
        },
    },
)
async def health(request: Request) -> JSONResponse:
    """200 when the database answers and the API is logged in to the broker, 503
    otherwise (public)."""
    database, (broker, broker_error) = await asyncio.gather(
        asyncio.to_thread(_database_ok, request), asyncio.to_thread(_broker_state, request)
    )
    healthy = database and broker == "ok"
    body: dict[str, Any] = {
        "status": "ok" if healthy else "unavailable",
        "database": "ok" if database else "unreachable",
        "broker": broker,
    }
    if broker_error is not None:
        body["broker_error"] = broker_error
    return JSONResponse(body, status_code=200 if healthy else 503)
