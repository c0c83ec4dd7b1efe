"""Registry reads the endpoints and the pages share: devices with their liveness, a
brand's products."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from schemas.named_queries import load_queries
from schemas.registry import QUERIES as REGISTRY_QUERIES

_QUERIES = load_queries("api.registry", "queries.sql")


def device_statuses(
    conn: psycopg.Connection[Any], *, site_id: str | None, after: str, limit: int
) -> list[dict[str, Any]]:
    """Devices (of `site_id`, or all) with ids after `after`, by id: site, kind, last seen,
    online, events today (UTC) and missing seq numbers."""
    params = {"site_id": site_id, "after": after, "limit": limit}
    cursor = conn.cursor(row_factory=dict_row)
    return cursor.execute(REGISTRY_QUERIES["list_devices"], params).fetchall()


def brand_products(conn: psycopg.Connection[Any], brand: str) -> list[dict[str, Any]]:
    """A brand's products and GRAI asset types by name: gtin (the item class), name,
    packaging type and its name, material, reusable, deposit (øre)."""
    cursor = conn.cursor(row_factory=dict_row)
    return cursor.execute(_QUERIES["brand_products"], {"brand": brand}).fetchall()
