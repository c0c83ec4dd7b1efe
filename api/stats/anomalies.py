"""Anomalies (SPEC §8): duplicate returns (possible cloned labels) and devices' seq gaps,
as the ingest keeps them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from schemas.grai import key_fields
from schemas.named_queries import load_queries

_QUERIES = load_queries("api.stats", "queries.sql")
_GAP_FIELDS = ("device_id", "gap_from", "gap_to", "missing", "detected_at")


def duplicate_returns(
    conn: psycopg.Connection[Any], start: datetime, end: datetime, *, brand: str | None,
    limit: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """Returns in [start, end) that ended no trip, oldest first: event_id, gtin or grai,
    serial, ts, previous_ts, device_id, site_id. A brand's (`brand` given) are those of
    its products, without device and site: those are the operator's."""
    params = {"from": start, "to": end, "limit": limit, "brand": brand}
    rows = conn.cursor(row_factory=dict_row).execute(_QUERIES["duplicate_returns"], params)
    found = []
    for row in rows:
        row.update(key_fields(row["item_class"], row["serial"]))
        if brand is not None:
            row["device_id"] = row["site_id"] = None
        found.append(row)
    return found


def seq_gaps(
    conn: psycopg.Connection[Any], start: datetime, end: datetime, *, limit: int
) -> list[dict[str, Any]]:
    """Seq numbers missing per device, detected in [start, end): device_id, gap_from,
    gap_to, missing, detected_at."""
    params = {"from": start, "to": end, "limit": limit}
    rows = conn.execute(_QUERIES["seq_gaps"], params)
    return [dict(zip(_GAP_FIELDS, row, strict=True)) for row in rows]
