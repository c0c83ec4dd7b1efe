"""`GET /health`: is the database answering and the broker reachable?"""

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


async def _broker_ok(request: Request) -> bool:
    endpoint = request.app.state.settings.mqtt
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            _, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        writer.close()
        await writer.wait_closed()
        return True
    except (OSError, TimeoutError):
        return False


@router.get(
    "/health",
    tags=["health"],
    responses={
        200: {"description": "Database and broker answer"},
        503: {"description": "One of them does not"},
    },
)
async def health(request: Request) -> JSONResponse:
    """200 when the database and the broker both answer, 503 otherwise (public)."""
    database, broker = await asyncio.gather(
        asyncio.to_thread(_database_ok, request), _broker_ok(request)
    )
    body: dict[str, Any] = {
        "status": "ok" if database and broker else "unavailable",
        "database": "ok" if database else "unreachable",
        "broker": "ok" if broker else "unreachable",
    }
    return JSONResponse(body, status_code=200 if database and broker else 503)
