"""Statistics endpoints: thin wrappers that scope by role and call the metric functions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.dependencies import Conn, require, settings
from api.return_rates import Bucket, return_rates
from api.time_window import window
from schemas.api_keys import Principal, Role
from schemas.registry import Slug
from schemas.settings import Settings

router = APIRouter(prefix="/v1/stats", tags=["statistics"])
StatsReader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.BRAND))]
TIME_HELP = "a date (local midnight in tz) or an RFC 3339 date-time on a quarter hour"


class ReturnRateRow(BaseModel):
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


def scoped_brand(caller: Principal, brand: str | None) -> tuple[str | None, bool]:
    """The brand filter to apply, and False when the caller may see nothing of it: a
    brand key is always held to its own brand."""
    if caller.role is Role.BRAND:
        return caller.brand, brand is None or brand == caller.brand
    return brand, True


@router.get("/return-rates", response_model=ReturnRates)
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
) -> dict[str, Any]:
    """Sold, returned and rejected per packaging type and bucket; return_rate =
    returned / sold (null when nothing was sold; above 1 when returns of earlier sales
    fall in the period)."""
    bounds = window(from_, to, tz or config.timezone)
    brand, visible = scoped_brand(caller, brand)
    if not visible:
        return {"rows": []}
    rows = return_rates(
        conn, bounds, bucket, packaging_type=packaging_type, brand=brand, site_id=site_id
    )
    return {"rows": rows}
