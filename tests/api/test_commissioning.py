"""Commissioning items for labels: unguessable serials, unique per GTIN by the database,
one `commissioned` event each, nothing created when the product is not the caller's."""

from __future__ import annotations

import math
import uuid
from typing import Any

import psycopg
import pytest

from api.labels.commissioning import SERIAL_ALPHABET, SERIAL_LENGTH, UnknownProduct, commission
from schemas.digital_link import validate_serial
from tests.factories import GTIN_COLA, GTIN_CRATE, count, seed_registry

COLA = GTIN_COLA.zfill(14)


def test_a_batch_commissions_unique_unguessable_items_with_their_events(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    seed_registry(db, [])
    ticks: list[int] = []
    with psycopg.connect(db_url) as conn:
        batch = commission(conn, COLA, 2500, "pdf", created_by="test", progress=ticks.append)
    assert len(batch.serials) == len(set(batch.serials)) == 2500
    assert batch.serials == sorted(batch.serials)
    assert ticks[-1] == 2500 and len(ticks) >= 3  # reported as it goes
    for serial in batch.serials:
        assert validate_serial(serial) == serial
        assert len(serial) == SERIAL_LENGTH and set(serial) <= set(SERIAL_ALPHABET)
    assert SERIAL_LENGTH * math.log2(len(SERIAL_ALPHABET)) >= 50  # SPEC §8
    assert count(db, "SELECT count(*) FROM items WHERE batch_id = %s", batch.id) == 2500
    events = db.execute(
        "SELECT e.serial, e.type, e.device_id, e.site_id, e.attrs->>'batch_id'"
        " FROM events e JOIN event_ids i USING (event_id) WHERE e.item_class = %s",
        (COLA,),
    ).fetchall()
    assert sorted(e[0] for e in events) == batch.serials
    assert {e[1:] for e in events} == {("commissioned", None, None, str(batch.id))}
    assert db.execute(
        "SELECT item_class, count, format, created_by FROM label_batches WHERE id = %s", (batch.id,)
    ).fetchone() == (COLA, 2500, "pdf", "test")


def test_serials_are_unique_per_gtin_by_the_database(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    seed_registry(db, [])
    with psycopg.connect(db_url) as conn:
        first = commission(conn, COLA, 10, "zip", created_by="test")
    batch_id = uuid.uuid4()
    db.execute(
        "INSERT INTO label_batches (id, item_class, count, format, created_by)"
        " VALUES (%s, %s, 1, 'pdf', 't')",
        (batch_id, COLA),
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(
            "INSERT INTO items (item_class, serial, batch_id) VALUES (%s, %s, %s)",
            (COLA, first.serials[0], batch_id),
        )
    # The same serial is free for another GTIN: uniqueness is per GTIN.
    db.execute(
        "INSERT INTO items (item_class, serial, batch_id) VALUES (%s, %s, %s)",
        (GTIN_CRATE.zfill(14), first.serials[0], batch_id),
    )


def test_another_brands_or_an_unknown_gtin_creates_nothing(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    seed_registry(db, [])
    unknown = "07038010000010"
    with psycopg.connect(db_url) as conn:
        with pytest.raises(UnknownProduct):
            commission(conn, COLA, 5, "pdf", created_by="t", brand="other")
        conn.rollback()
        with pytest.raises(UnknownProduct):
            commission(conn, unknown, 5, "pdf", created_by="t")
        conn.rollback()
    assert count(db, "SELECT count(*) FROM items") == 0
    assert count(db, "SELECT count(*) FROM label_batches") == 0
    assert count(db, "SELECT count(*) FROM events") == 0
