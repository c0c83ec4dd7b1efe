"""The day rollups of return counts: their zone, and the locks that keep them consistent.

The day tables (migration 0005) key counts by packaging type and brand, resolved from the
products table when a batch is counted. Two things change that resolution afterwards: a
product registered or re-assigned (its counts move) and a new deployment zone (the tables
are rebuilt). Both must not interleave with a batch being counted, or the batch would be
counted under the old key after the move. Advisory locks on 64 item class slots order
them: a batch holds the slots of its item classes shared while it counts, a product
change holds its item class's slot exclusively, a rebuild holds all slots. Locks are
taken in a statement of their own, before the one that reads `products`, so that
statement sees what the holder committed (PostgreSQL takes a statement's snapshot when the
statement starts).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

LOCK_CLASS = 0x6C74  # advisory lock namespace of the item class slots ("lt")
LOCK_SLOTS = 64

_LOCK = "SELECT count({function}(%(class)s, s)) FROM unnest(%(slots)s::int[]) AS s"


def item_class_slot(item_class: str) -> int:
    """The lock slot of an item class (stable across processes and versions)."""
    return zlib.crc32(item_class.encode("ascii")) % LOCK_SLOTS


def _lock(conn: psycopg.Connection[Any], slots: Iterable[int], *, exclusive: bool) -> None:
    ordered = sorted(set(slots))
    if not ordered:
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    # Sorted: every holder takes its slots in the same order, so none waits in a cycle.
    conn.execute(_LOCK.format(function=function), {"class": LOCK_CLASS, "slots": ordered})


def lock_for_counting(conn: psycopg.Connection[Any], item_classes: Iterable[str]) -> None:
    """Shared slots of the item classes a batch is about to count (until its transaction
    ends)."""
    _lock(conn, (item_class_slot(c) for c in item_classes), exclusive=False)


def lock_products(conn: psycopg.Connection[Any], item_classes: Iterable[str]) -> None:
    """Exclusive slots of products about to be registered or re-assigned."""
    _lock(conn, (item_class_slot(c) for c in item_classes), exclusive=True)


def lock_all_shared(conn: psycopg.Connection[Any]) -> None:
    """Every slot shared, as a batch counting every item class would: for work beside the
    ingest that must not interleave with a product change or a rebuild
    (schemas.retention)."""
    _lock(conn, range(LOCK_SLOTS), exclusive=False)


def move_counts(
    conn: psycopg.Connection[Any],
    item_class: str,
    old: tuple[str | None, str | None],
    new: tuple[str | None, str | None],
) -> None:
    """Move an item class's day and hour counts and its material grams from (packaging
    type, brand) `old` to `new`; the caller holds its slot (lock_products)."""
    if old != new:
        params = (item_class, old[0], old[1], *new)
        conn.execute("SELECT move_return_counts(%s, %s, %s, %s, %s)", params)
        conn.execute("SELECT move_material_grams(%s, %s, %s, %s, %s)", params)


def set_zone(conn: psycopg.Connection[Any], zone: str) -> bool:
    """Make `zone` the day rollups' zone, rebuilding them if it changes; True if it did.
    Runs inside the caller's transaction."""
    old = rollup_zone(conn)
    if old == zone:
        return False
    _lock(conn, range(LOCK_SLOTS), exclusive=True)
    # The rebuild reads quarter-hour rows and raw events from the beginning. Asked with
    # the slots held: a retention run advances its horizon holding them shared.
    conn.execute(
        "SELECT require_complete_history(%s, %s)",
        (
            f"LOOPTRACK_TIMEZONE={zone}: rebuilding the day rollups kept in {old}",
            f"keep LOOPTRACK_TIMEZONE={old}",
        ),
    )
    conn.execute("UPDATE rollup_zone SET zone = %s", (zone,))
    conn.execute("SELECT rebuild_return_counts_daily()")
    conn.execute("SELECT rebuild_reject_counts_daily()")
    conn.execute("SELECT rebuild_material_days_all()")
    log.info("day rollups rebuilt old_zone=%s zone=%s", old, zone)
    return True


def rollup_zone(conn: psycopg.Connection[Any]) -> str:
    """The zone the day rollups are kept in (one row, written by migration 0005)."""
    row = conn.execute("SELECT zone FROM rollup_zone").fetchone()
    if row is None:
        raise RuntimeError("rollup_zone is empty: run `looptrack db migrate`")
    return str(row[0])
