"""Commissioning serialised items for labels: unguessable serials, unique per item class
(a GTIN, or a GRAI asset type: schemas.grai) by the items table's primary key, each item
with its `commissioned` event. Shared by `POST /v1/labels` and `looptrack labels`."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from uuid6 import uuid7

from schemas.named_queries import load_queries

_QUERIES = load_queries("api.labels", "queries.sql")

# Crockford's base32 alphabet: digits and capitals without I, L, O, U, so a serial read
# aloud or typed from the human-readable line is not mistaken; all in GS1 set 82.
SERIAL_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SERIAL_LENGTH = 12  # 12 characters of 5 bits: 60 bits of randomness (SPEC §8: at least 50)
# Rows per COPY flush while commissioning; progress is reported at this pace too.
CHUNK = 1000


def new_serial() -> str:
    """A random serial from the operating system's CSPRNG."""
    return "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(SERIAL_LENGTH))


@dataclass(frozen=True, slots=True)
class Batch:
    """A commissioned batch: its id, item class, format and serials (sorted: the sheet
    order)."""

    id: uuid.UUID
    item_class: str
    format: str
    serials: list[str]


class UnknownProduct(LookupError):
    """The item class is not a registered product (or not one of the caller's brand)."""


def commission(
    conn: psycopg.Connection[Any],
    item_class: str,
    count: int,
    fmt: str,
    *,
    created_by: str,
    brand: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Batch:
    """Commission `count` new items of `item_class` in the caller's transaction; `brand`
    limits it to that brand's products. Raises UnknownProduct. A serial that happens to
    exist already for the item class is drawn again: uniqueness is the database's, not luck's."""
    product = conn.execute(_QUERIES["product_of_brand"], {"item_class": item_class, "brand": brand})
    if product.fetchone() is None:
        raise UnknownProduct(item_class)
    batch_id = uuid.uuid4()
    conn.execute(
        _QUERIES["insert_batch"],
        {"id": batch_id, "item_class": item_class, "count": count, "format": fmt, "by": created_by},
    )
    conn.execute(_QUERIES["create_new_serials"])
    serials: list[str] = []
    while len(serials) < count:
        wanted = min(CHUNK, count - len(serials))
        with conn.cursor() as cur:
            with cur.copy(_QUERIES["copy_new_serials"]) as copy:
                for _ in range(wanted):
                    copy.write_row((new_serial(),))
            # Only serials new for this item class are kept; a clash (or a repeat within the
            # chunk) simply leaves fewer, and the loop draws again.
            cur.execute(_QUERIES["insert_items"], {"item_class": item_class, "batch_id": batch_id})
            serials += [row[0] for row in cur.fetchall()]
            cur.execute(_QUERIES["clear_new_serials"])
        if progress is not None:
            progress(len(serials))
    serials.sort()  # the order of the sheet, also when downloaded again
    _commissioned_events(conn, item_class, serials, batch_id)
    return Batch(batch_id, item_class, fmt, serials)


def _commissioned_events(
    conn: psycopg.Connection[Any], item_class: str, serials: list[str], batch_id: uuid.UUID
) -> None:
    """One `commissioned` event per item, with its idempotency key; not from a device,
    so without device and site (and outside the device rollups). The items join the
    reuse aggregates (item_loops) with no trips."""
    now = datetime.now(UTC)
    attrs = Jsonb({"batch_id": str(batch_id)})
    # Time-ordered, as devices.client names events: they join event_ids' index at its end.
    ids = [uuid7() for _ in serials]
    with conn.cursor() as cur:
        with cur.copy(_QUERIES["copy_event_ids"]) as copy:
            for event_id in ids:
                copy.write_row((event_id, now))
        with cur.copy(_QUERIES["copy_commissioned"]) as copy:
            for event_id, serial in zip(ids, serials, strict=True):
                copy.write_row((event_id, now, now, item_class, serial, attrs, "commissioned", 1))
        cur.execute(
            _QUERIES["commissioned_item_loops"],
            {"item_class": item_class, "ts": now, "serials": serials, "event_ids": ids},
        )


def batch_items(
    conn: psycopg.Connection[Any], batch_id: uuid.UUID, brand: str | None
) -> tuple[Batch, dict[str, Any]] | None:
    """A batch and its product's name and deposit, or None if unknown or another brand's."""
    row = conn.execute(_QUERIES["batch"], {"id": batch_id, "brand": brand}).fetchone()
    if row is None:
        return None
    item_class, fmt, name, deposit = row
    product = {"name": name, "deposit": deposit}
    serials = [r[0] for r in conn.execute(_QUERIES["batch_serials"], {"id": batch_id}).fetchall()]
    return Batch(batch_id, item_class, fmt, serials), product


def item_product(
    conn: psycopg.Connection[Any], item_class: str, serial: str, brand: str | None
) -> dict[str, Any] | None:
    """A commissioned item's product name and deposit, or None (unknown, another brand's)."""
    row = conn.execute(
        _QUERIES["item_product"], {"item_class": item_class, "serial": serial, "brand": brand}
    ).fetchone()
    return None if row is None else {"name": row[0], "deposit": row[1]}
