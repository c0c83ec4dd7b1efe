"""The registry's reads (and the removal of a target) for the endpoints and the pages: each
record as a dict, None when there is none. The records, their validation and upserts are
schemas.registry's and schemas.circularity's, and so are most of the queries."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from schemas.circularity import QUERIES as CIRCULARITY_QUERIES
from schemas.named_queries import load_queries
from schemas.registry import QUERIES as REGISTRY_QUERIES

_QUERIES = load_queries("api.registry", "queries.sql")


def _one(
    conn: psycopg.Connection[Any], query: str, params: dict[str, Any]
) -> dict[str, Any] | None:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchone()


def _all(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchall()


# -- packaging types, products, GRAI asset types ------------------------------------------


def find_packaging_type(conn: psycopg.Connection[Any], id: str) -> dict[str, Any] | None:
    return _one(conn, REGISTRY_QUERIES["get_packaging_type"], {"id": id})


def packaging_types(conn: psycopg.Connection[Any], *, limit: int) -> list[dict[str, Any]]:
    """Packaging types by id."""
    return _all(conn, REGISTRY_QUERIES["list_packaging_types"], {"limit": limit})


def find_product(
    conn: psycopg.Connection[Any], gtin14: str, *, brand: str | None
) -> dict[str, Any] | None:
    """A product; with `brand`, only that brand's."""
    return _one(conn, REGISTRY_QUERIES["get_product"], {"item_class": gtin14, "brand": brand})


def products(
    conn: psycopg.Connection[Any], *, brand: str | None, packaging_type: str | None,
    after: str, limit: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """Products by GTIN after `after` (filters: None = any)."""
    params = {"brand": brand, "packaging_type": packaging_type, "after": after, "limit": limit}
    return _all(conn, REGISTRY_QUERIES["list_products"], params)


def brand_products(conn: psycopg.Connection[Any], brand: str) -> list[dict[str, Any]]:
    """A brand's products and GRAI asset types by name: item_class, name, packaging type
    and its name, material, reusable, deposit (øre)."""
    return _all(conn, _QUERIES["brand_products"], {"brand": brand})


def product_owner(conn: psycopg.Connection[Any], item_class: str) -> str | None:
    """The brand of a registered product or asset type; None when it is not registered."""
    row = conn.execute(REGISTRY_QUERIES["product_brand"], {"item_class": item_class}).fetchone()
    return None if row is None else str(row[0])


def declarations(
    conn: psycopg.Connection[Any], gtin14: str, *, brand: str | None
) -> list[dict[str, Any]]:
    """A product's material declarations, newest first; with `brand`, only that brand's
    (none: no such product of it)."""
    params = {"item_class": gtin14, "brand": brand}
    return _all(conn, CIRCULARITY_QUERIES["list_declarations"], params)


def find_asset_type(
    conn: psycopg.Connection[Any], asset_type: str, *, brand: str | None
) -> dict[str, Any] | None:
    """A GRAI asset type; with `brand`, only that brand's."""
    params = {"grai": asset_type, "brand": brand}
    return _one(conn, REGISTRY_QUERIES["get_asset_type"], params)


def asset_types(
    conn: psycopg.Connection[Any], *, brand: str | None, packaging_type: str | None,
    after: str, limit: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """GRAI asset types by asset type after `after` (filters: None = any)."""
    params = {"brand": brand, "packaging_type": packaging_type, "after": after, "limit": limit}
    return _all(conn, REGISTRY_QUERIES["list_asset_types"], params)


# -- sites and devices --------------------------------------------------------------------


def find_site(conn: psycopg.Connection[Any], id: str) -> dict[str, Any] | None:
    return _one(conn, REGISTRY_QUERIES["get_site"], {"id": id})


def find_device(conn: psycopg.Connection[Any], id: str) -> dict[str, Any] | None:
    return _one(conn, REGISTRY_QUERIES["get_device"], {"id": id})


def device_statuses(
    conn: psycopg.Connection[Any], *, site_id: str | None, after: str, limit: int
) -> list[dict[str, Any]]:
    """Devices (of `site_id`, or all) with ids after `after`, by id: site, kind, last seen,
    online, events today (UTC) and missing seq numbers."""
    params = {"site_id": site_id, "after": after, "limit": limit}
    return _all(conn, REGISTRY_QUERIES["list_devices"], params)


# -- sorting streams and circularity targets ----------------------------------------------


def find_sorting_stream(conn: psycopg.Connection[Any], stream: str) -> dict[str, Any] | None:
    return _one(conn, CIRCULARITY_QUERIES["get_sorting_stream"], {"stream": stream})


def sorting_streams(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every mapped sorting stream with its outcome."""
    return _all(conn, CIRCULARITY_QUERIES["list_sorting_streams"], {})


def find_target(conn: psycopg.Connection[Any], id: str) -> dict[str, Any] | None:
    return _one(conn, CIRCULARITY_QUERIES["get_target"], {"id": id})


def registered_targets(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every circularity target as registered (their progress: api.stats.targets)."""
    return _all(conn, CIRCULARITY_QUERIES["list_targets"], {})


def delete_target(conn: psycopg.Connection[Any], id: str) -> bool:
    """Remove a circularity target; False when there was none."""
    return _one(conn, CIRCULARITY_QUERIES["delete_target"], {"id": id}) is not None
