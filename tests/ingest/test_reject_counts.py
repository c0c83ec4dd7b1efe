"""Rejects by reason per local day (migration 0011): kept by the ingest and moved to the
new days when the deployment's zone changes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import psycopg

from schemas.migrations import migrate
from tests.factories import GTIN_COLA, event, seed_registry
from tests.storing import store

LATE = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # 00:30 on 2 March in Oslo


def days(db: psycopg.Connection[Any]) -> list[tuple[date, str, int]]:
    return db.execute("SELECT day, reason, qty FROM reject_counts_daily ORDER BY 1, 2").fetchall()


def test_rejects_are_counted_per_day_of_the_zone_and_follow_a_new_zone(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    seed_registry(db, ["rvm-1"])
    reasons = ["damaged", "damaged", "not_empty"]
    store(db, "rvm-1", [event("rejected", gtin=GTIN_COLA, ts=LATE, reason=r) for r in reasons])
    store(db, "rvm-1", [event("rejected", gtin=GTIN_COLA, ts=LATE, reason="damaged", qty=5)])
    assert days(db) == [(date(2026, 3, 1), "damaged", 7), (date(2026, 3, 1), "not_empty", 1)]

    migrate(db_url, timezone="Europe/Oslo")
    assert days(db) == [(date(2026, 3, 2), "damaged", 7), (date(2026, 3, 2), "not_empty", 1)]
