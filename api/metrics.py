"""`GET /metrics` in Prometheus text format: request latency here, ingest counters from
the database (so every worker's totals are visible from any API instance)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

from api.dependencies import require
from api.problems import ERROR_RESPONSES
from schemas.api_keys import Principal, Role

if TYPE_CHECKING:
    from starlette.datastructures import State

router = APIRouter(tags=["health"], responses=ERROR_RESPONSES)

# Latency buckets (s): the statistics target is p95 < 50 ms.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class IngestCounters(Collector):
    """Reads ingest_counters at scrape time."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "looptrack_ingest_events",
            "Events handled by the ingest workers: received = stored + duplicate + "
            "dead_lettered at all times (a payload refused whole counts as one)",
            labels=["worker", "outcome"],
        )
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT worker, received, stored, duplicates, dead_lettered FROM ingest_counters"
            ).fetchall()
        for worker, received, stored, duplicates, dead in rows:
            family.add_metric([worker, "received"], received)
            family.add_metric([worker, "stored"], stored)
            family.add_metric([worker, "duplicate"], duplicates)
            family.add_metric([worker, "dead_lettered"], dead)
        yield family


class LabelCacheCounters(Collector):
    """Reads the label download cache's counters (api/labels/cache.py) at scrape time;
    zeros until the first download makes the cache."""

    def __init__(self, state: State) -> None:
        self._state = state

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        downloads = CounterMetricFamily(
            "looptrack_label_downloads",
            "Label batch downloads (GET /v1/labels/{batch_id}) by how they were served: "
            "hit (from the cache), shared (waited for the same render already running), "
            "miss (rendered); not counting 304s",
            labels=["outcome"],
        )
        evictions = CounterMetricFamily(
            "looptrack_label_cache_evictions",
            "Rendered label files dropped from the cache to stay within "
            "LOOPTRACK_LABELS_CACHE_SIZE",
        )
        held = GaugeMetricFamily(
            "looptrack_label_cache_bytes", "Bytes of rendered label files the cache holds"
        )
        cache = getattr(self._state, "label_cache", None)
        stats = None if cache is None else cache.stats()
        for outcome in ("hit", "shared", "miss"):
            downloads.add_metric([outcome], 0 if stats is None else stats.outcomes[outcome])
        evictions.add_metric([], 0 if stats is None else stats.evictions)
        held.add_metric([], 0 if stats is None else stats.bytes)
        yield downloads
        yield evictions
        yield held


def install(app: FastAPI) -> None:
    """A registry of this app's own, and the middleware timing every request."""
    registry = CollectorRegistry()
    latency = Histogram(
        "looptrack_http_request_duration_seconds",
        "HTTP request latency by route and status",
        ["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    registry.register(LabelCacheCounters(app.state))
    app.state.metrics = registry

    @app.middleware("http")
    async def _time_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        # The route template, not the raw path: bounded label values.
        template = getattr(route, "path", "unmatched")
        latency.labels(request.method, template, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


@router.get("/metrics", response_class=Response)
def metrics(request: Request, _: Annotated[Principal, Depends(require(Role.OPERATOR))]) -> Response:
    """Prometheus text format (operator key)."""
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
