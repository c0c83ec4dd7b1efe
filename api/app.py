"""The HTTP API application: factory, lifespan (one connection pool) and routers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from psycopg_pool import ConnectionPool

from api import docs, health, metrics, pages, problems
from api.body_limit import BodyLimit
from api.browser_guard import BrowserGuard
from api.dead_letters import routes as dead_letter_routes
from api.epcis import routes as epcis
from api.epcis.capture import MAX_CAPTURE_BYTES
from api.events import device_routes as device_events
from api.events import routes as events
from api.items import resolver
from api.items import routes as items
from api.key_throttle import KeyThrottle
from api.keys import routes as keys
from api.labels import routes as labels
from api.nul_characters import refuse_nul
from api.pages.errors import error_page
from api.registry import routes as registry
from api.stats import routes as stats
from schemas.publisher import Publisher
from schemas.settings import Settings, get_settings

PAGES_STATIC = Path(pages.__file__).parent / "static"
# Connections for request handlers; FastAPI runs the (synchronous) handlers in a thread
# pool of 40, so a few more than the busiest moment needs.
POOL_MAX = 10


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = ConnectionPool(
            settings.database_url,
            min_size=1,
            max_size=POOL_MAX,
            open=False,
            check=ConnectionPool.check_connection,
            name="api",
        )
        pool.open(wait=False)
        # Relays HTTP-posted payloads and dead-letter replays to the broker.
        publisher = Publisher(settings.mqtt, f"looptrack-api-{uuid.uuid4().hex[:8]}")
        publisher.start()
        app.state.pool = pool
        app.state.publisher = publisher
        ingest_counters = metrics.IngestCounters(pool)
        app.state.metrics.register(ingest_counters)
        app.state.settings = settings
        app.state.key_throttle = KeyThrottle()
        try:
            yield
        finally:
            app.state.metrics.unregister(ingest_counters)
            publisher.stop()
            pool.close()

    app = FastAPI(
        title="looptrack",
        version="0.1.0",
        description="Return rates and reuse cycles of closed-loop packaging (SPEC §8).",
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul)],
        # Served by api.docs from the package's own files, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app, page=error_page)
    # Bodies are bounded before any route reads one (FastAPI parses a JSON body before it
    # checks the key); inside the metrics middleware, so the refusals are counted too.
    app.add_middleware(BodyLimit, larger={"/v1/epcis/capture": MAX_CAPTURE_BYTES})
    metrics.install(app)
    # Outermost: its headers go on every answer, refusals included.
    app.add_middleware(BrowserGuard, public_base_url=settings.public_base_url)
    app.include_router(metrics.router)
    app.include_router(health.router)
    app.include_router(registry.router)
    app.include_router(stats.router)
    app.include_router(events.router)
    app.include_router(items.router)
    app.include_router(device_events.router)
    app.include_router(epcis.router)
    app.include_router(dead_letter_routes.router)
    app.include_router(keys.router)
    app.include_router(labels.router)
    app.include_router(pages.router)
    app.include_router(resolver.router)
    app.add_exception_handler(pages.LoginRequired, pages.login_required_handler)
    app.mount("/static", StaticFiles(directory=PAGES_STATIC), name="static")
    docs.install(app)
    return app
