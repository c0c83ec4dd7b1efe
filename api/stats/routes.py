"""Statistics endpoints: thin wrappers that scope by role and call the metric functions."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.dependencies import Conn, Operator, require, scoped_brand, settings
from api.problems import ERROR_RESPONSES, Problem
from api.stats.anomalies import duplicate_returns, seq_gaps
from api.stats.materials import material_rows, targets
from api.stats.return_rates import Bucket, return_rates_json
from api.stats.reuse import DEFAULT_LOSS_AFTER_DAYS, reuse
from api.stats.time_limit import SLOW_WINDOW_RESPONSES
from api.time_window import Instant, window
from schemas.api_keys import Principal, Role
from schemas.registry import Slug
from schemas.settings import Settings

router = APIRouter(prefix="/v1/stats", tags=["statistics"], responses=ERROR_RESPONSES)
StatsReader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.BRAND))]
TIME_HELP = "a date (local midnight in tz) or an RFC 3339 date-time on a quarter hour"


class ReturnRateRow(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "bucket_start": "2026-03-29T00:00:00+01:00",
                    "packaging_type": "pet-0.5l",
                    "sold": 1200,
                    "returned": 1046,
                    "rejected": 31,
                    "return_rate": 0.8716666666666667,
                    "sold_kg": 26.4,
                    "returned_kg": 23.012,
                }
            ]
        }
    )

    bucket_start: datetime
    packaging_type: str | None
    sold: int
    returned: int
    rejected: int
    return_rate: float | None
    sold_kg: float | None
    returned_kg: float | None


class ReturnRates(BaseModel):
    rows: list[ReturnRateRow]


@router.get("/return-rates", response_model=ReturnRates, responses=SLOW_WINDOW_RESPONSES)
def get_return_rates(
    conn: Conn,
    caller: StatsReader,
    config: Annotated[Settings, Depends(settings)],
    from_: Annotated[str | None, Query(alias="from", max_length=40, description=TIME_HELP)] = None,
    to: Annotated[str | None, Query(max_length=40, description=TIME_HELP)] = None,
    bucket: Bucket = Bucket.DAY,
    packaging_type: Annotated[Slug | None, Query()] = None,
    brand: Annotated[Slug | None, Query()] = None,
    site_id: Annotated[Slug | None, Query()] = None,
    tz: Annotated[str | None, Query(max_length=64, description="IANA time zone")] = None,
) -> Response:
    """Sold, returned and rejected per packaging type and bucket; return_rate =
    returned / sold (null when nothing was sold; above 1 when returns of earlier sales
    fall in the period). Whole days in the day rollups' zone are read from day totals;
    other windows add up hourly and 15-minute counts (with site_id: 15-minute counts)
    under a time limit, over which the answer is a 422 /problems/slow-window naming the
    windows answered fast (docs/statistics.md)."""
    bounds = window(from_, to, tz or config.timezone)
    brand, visible = scoped_brand(caller, brand)
    if not visible:
        return JSONResponse({"rows": []})
    body = return_rates_json(
        conn, bounds, bucket, packaging_type=packaging_type, brand=brand, site_id=site_id,
        timeout_ms=config.stats_timeout_ms,
    )  # fmt: skip
    # Already JSON in the response's shape (built by PostgreSQL): sent as it is.
    return Response(body, media_type="application/json")


class MaterialRow(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "bucket_start": "2026-03-01T00:00:00+01:00",
                    "material": "PET",
                    "placed_kg": 2200.0,
                    "collected_kg": 1980.5,
                    "sorted_kg": 1950.2,
                    "sorted_reuse_kg": 0.0,
                    "sorted_recycling_kg": 1890.0,
                    "sorted_energy_recovery_kg": 42.2,
                    "sorted_residual_kg": 18.0,
                    "sorted_unmapped_kg": 0.0,
                    "recycled_content_kg": 880.0,
                    "renewable_content_kg": 0.0,
                    "fibre_kg": 0.0,
                    "unweighed_qty": 0,
                    "collection_rate": 0.9002,
                    "material_recycling_rate": 0.8591,
                    "reuse_share": 0.0,
                    "recycled_content_share": 0.4,
                    "renewable_content_share": 0.0,
                    "fibre_share": 0.0,
                }
            ]
        }
    )

    bucket_start: datetime
    material: str | None
    placed_kg: float
    collected_kg: float | None
    sorted_kg: float | None
    sorted_reuse_kg: float | None
    sorted_recycling_kg: float | None
    sorted_energy_recovery_kg: float | None
    sorted_residual_kg: float | None
    sorted_unmapped_kg: float | None
    recycled_content_kg: float
    renewable_content_kg: float
    fibre_kg: float
    unweighed_qty: int
    collection_rate: float | None
    material_recycling_rate: float | None
    reuse_share: float | None
    recycled_content_share: float | None
    renewable_content_share: float | None
    fibre_share: float | None


class Materials(BaseModel):
    rows: list[MaterialRow]


@router.get("/materials", response_model=Materials, responses=SLOW_WINDOW_RESPONSES)
def get_materials(
    conn: Conn,
    caller: StatsReader,
    config: Annotated[Settings, Depends(settings)],
    from_: Annotated[str | None, Query(alias="from", max_length=40, description=TIME_HELP)] = None,
    to: Annotated[str | None, Query(max_length=40, description=TIME_HELP)] = None,
    bucket: Bucket = Bucket.MONTH,
    packaging_type: Annotated[Slug | None, Query()] = None,
    brand: Annotated[Slug | None, Query()] = None,
    tz: Annotated[str | None, Query(max_length=64, description="IANA time zone")] = None,
) -> Response:
    """Packaging by weight per material and bucket: placed on the market (sold), collected
    (returned), sorted per outcome, and the rates built on them, each with its numerator
    and denominator (docs/materials.md). A brand key sees its own products' placed-on-market
    side only: the collected and sorted fields are null. Windows other than whole days in
    the day rollups' zone add up hourly and 15-minute counts under a time limit, over which
    the answer is a 422 /problems/slow-window (docs/statistics.md)."""
    bounds = window(from_, to, tz or config.timezone)
    brand, visible = scoped_brand(caller, brand)
    if not visible:
        return JSONResponse({"rows": []})
    rows = material_rows(
        conn,
        bounds,
        bucket,
        brand=brand,
        packaging_type=packaging_type,
        placed_only=caller.role is Role.BRAND,
        timeout_ms=config.stats_timeout_ms,
    )
    # Rows already in the response's shape: written as JSON directly, not validated again
    # (a year by day is thousands of rows).
    body = json.dumps({"rows": rows}, default=datetime.isoformat)
    return Response(body, media_type="application/json")


class TrendPoint(BaseModel):
    month: date
    value: float | None
    numerator_kg: float
    denominator_kg: float


class LatestValue(BaseModel):
    value: float | None
    from_: datetime = Field(alias="from")
    to: datetime
    numerator_kg: float
    denominator_kg: float


class TargetStatus(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "no-plastic-recycling-2030",
                    "name": "Material recycling of plastic packaging",
                    "metric": "material_recycling_rate",
                    "materials": ["PET", "HDPE", "PP"],
                    "value": 0.55,
                    "year": 2030,
                    "baseline_value": 0.21,
                    "baseline_year": 2020,
                    "source": "Norwegian plastic strategy",
                    "latest": {
                        "value": 0.47,
                        "from": "2025-12-01T00:00:00+01:00",
                        "to": "2026-12-01T00:00:00+01:00",
                        "numerator_kg": 47000.0,
                        "denominator_kg": 100000.0,
                    },
                    "trend": [
                        {
                            "month": "2025-12-01",
                            "value": 0.45,
                            "numerator_kg": 3600.0,
                            "denominator_kg": 8000.0,
                        }
                    ],
                    "slope_per_year": 0.03,
                    "projected": 0.5975,
                    "on_track": True,
                }
            ]
        }
    )

    id: str
    name: str
    metric: str
    materials: list[str] | None
    value: float
    year: int
    baseline_value: float | None
    baseline_year: int | None
    source: str
    latest: LatestValue
    trend: list[TrendPoint]
    slope_per_year: float | None
    projected: float | None
    on_track: bool | None


class Targets(BaseModel):
    rows: list[TargetStatus]


@router.get("/targets", response_model=Targets)
def get_targets(conn: Conn, _: Operator) -> dict[str, Any]:
    """Each circularity target with its latest value (the last 12 whole months), the
    monthly trend, the slope per year and whether the current trajectory reaches it by
    the end of its year (docs/materials.md)."""
    return {"rows": targets(conn)}


class HistogramBar(BaseModel):
    trips: int
    items: int


class ReuseRow(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "packaging_type": "crate-24",
                    "items": 5000,
                    "trips": 61250,
                    "mean_trips": 12.25,
                    "p50_trips": 12,
                    "p90_trips": 21,
                    "max_trips": 38,
                    "target_trips": 60,
                    "reached_target": 0,
                    "mean_trip_days": 23.4,
                    "median_trip_days": 19.8,
                    "lost": 140,
                    "loss_rate": 0.028,
                    "histogram": [{"trips": 0, "items": 35}, {"trips": 1, "items": 61}],
                }
            ]
        }
    )

    packaging_type: str
    items: int
    trips: int
    mean_trips: float
    p50_trips: int
    p90_trips: int
    max_trips: int
    target_trips: int | None
    reached_target: int | None
    mean_trip_days: float | None
    median_trip_days: float | None
    lost: int
    loss_rate: float | None
    histogram: list[HistogramBar]


class Reuse(BaseModel):
    rows: list[ReuseRow]


@router.get("/reuse", response_model=Reuse)
def get_reuse(
    conn: Conn,
    caller: StatsReader,
    packaging_type: Annotated[Slug | None, Query()] = None,
    brand: Annotated[Slug | None, Query()] = None,
    loss_after_days: Annotated[int, Query(ge=1, le=3650)] = DEFAULT_LOSS_AFTER_DAYS,
) -> dict[str, Any]:
    """Trips of serialised items per packaging type. A `returned` right after another
    `returned` (no `sold`/`filled` between) is a duplicate return, not a trip; an item is
    lost when its latest event is `sold`/`filled` older than `loss_after_days`."""
    brand, visible = scoped_brand(caller, brand)
    if not visible:
        return {"rows": []}
    rows = reuse(conn, packaging_type=packaging_type, brand=brand, loss_after_days=loss_after_days)
    return {"rows": rows}


class DuplicateReturn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "0b9a4e6e-2a5b-4d0c-9d7e-5c1f0e3a8b21",
                    "gtin": "07038010001239",
                    "serial": "7KQ2M9XH4PZ",
                    "ts": "2026-03-29T14:02:11+02:00",
                    "previous_ts": "2026-03-29T13:58:40+02:00",
                    "device_id": "rvm-oslo-7",
                    "site_id": "oslo-grunerlokka",
                }
            ]
        }
    )

    event_id: uuid.UUID
    gtin: str | None  # None for a returnable asset keyed by GRAI
    grai: str | None = None  # such an asset's whole GRAI: asset type and serial
    serial: str
    ts: datetime
    previous_ts: datetime
    device_id: str | None
    site_id: str | None


class SeqGap(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "device_id": "rvm-oslo-7",
                    "gap_from": 1041,
                    "gap_to": 1043,
                    "missing": 3,
                    "detected_at": "2026-03-29T14:02:12+02:00",
                }
            ]
        }
    )

    device_id: str
    gap_from: int
    gap_to: int
    missing: int
    detected_at: datetime


class Anomalies(BaseModel):
    duplicate_returns: list[DuplicateReturn]
    seq_gaps: list[SeqGap]


# Most anomalies of each kind in one answer.
MAX_ANOMALIES = 1000


@router.get("/anomalies", response_model=Anomalies)
def get_anomalies(
    conn: Conn,
    caller: StatsReader,
    from_: Annotated[Instant | None, Query(alias="from")] = None,
    to: Annotated[Instant | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ANOMALIES)] = 100,
) -> dict[str, Any]:
    """Duplicate returns (possible cloned labels) and open seq gaps in [from, to), by
    default the last 30 days. A brand key sees its own products' duplicate returns, without
    devices or sites, and no seq gaps (those are the operator's devices)."""
    end = to or datetime.now(UTC)
    start = from_ or end - timedelta(days=30)
    if start >= end:
        raise Problem(422, "invalid-window", "from must be before to")
    brand, _ = scoped_brand(caller, None)
    duplicates = duplicate_returns(conn, start, end, brand=brand, limit=limit)
    if caller.role is Role.BRAND:
        return {"duplicate_returns": duplicates, "seq_gaps": []}
    return {"duplicate_returns": duplicates, "seq_gaps": seq_gaps(conn, start, end, limit=limit)}
