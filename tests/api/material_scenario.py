"""A small world of material flows for the material pages' tests: two brands' bottles, a
can, a fibre carton and a crate, sold, returned and sorted over two months, and the
figures docs/materials.md defines, worked out here from the plan (never by the code under
test)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from tests.factories import with_check_digit

# Packaging types as PUT /v1/packaging-types/{id} takes them.
PACKAGING = {
    "pet-0.5l": {"name": "PET 0.5 l", "material": "PET", "weight_g": 20,
                 "recycled_content_pct": 25},
    "can-0.33l": {"name": "Can 0.33 l", "material": "aluminium", "weight_g": 10,
                  "recycled_content_pct": 70},
    "carton-1l": {"name": "Carton 1 l", "material": "fibre", "weight_g": 30,
                  "renewable_content_pct": 80, "fibre_based": True},
    "crate-24": {"name": "Crate 24", "material": "HDPE", "weight_g": 1600, "reusable": True,
                 "target_trips": 50},
}  # fmt: skip
COLA = with_check_digit("703801000123").zfill(14)
CAN = with_check_digit("703801000234").zfill(14)
CARTON = with_check_digit("703801000345").zfill(14)
CRATE = with_check_digit("0703801000999").zfill(14)
OTHER = with_check_digit("703801000777").zfill(14)
OTHER_NAME = "Secret Soda of Another Brand"
# Products as PUT /v1/products/{gtin} takes them; the other brand's bottle declares its own
# recycled share.
PRODUCTS = {
    COLA: {"packaging_type": "pet-0.5l", "brand": "fjord", "name": "Fjord Cola 0.5 l"},
    CAN: {"packaging_type": "can-0.33l", "brand": "fjord", "name": "Fjord Tonic can"},
    CARTON: {"packaging_type": "carton-1l", "brand": "fjord", "name": "Fjord Juice carton"},
    CRATE: {"packaging_type": "crate-24", "brand": "fjord", "name": "Fjord crate"},
    OTHER: {"packaging_type": "pet-0.5l", "brand": "other", "name": OTHER_NAME,
            "recycled_content_pct": 50},
}  # fmt: skip
# A stream no one has mapped: counted as unmapped.
UNMAPPED_STREAM = "bale-7"


@dataclass(frozen=True)
class Scan:
    month: int  # 0: two months ago, 1: last month
    type: str
    gtin: str
    qty: int
    stream: str | None = None
    weight_g: int | None = None  # a sorting line's measured weight of all qty packages


PLAN = [
    Scan(0, "sold", COLA, 100), Scan(0, "sold", OTHER, 50), Scan(0, "sold", CAN, 40),
    Scan(0, "sold", CARTON, 20),
    Scan(0, "returned", COLA, 70), Scan(0, "returned", OTHER, 40), Scan(0, "returned", CAN, 30),
    Scan(0, "sorted", COLA, 90, "PET", weight_g=1850), Scan(0, "sorted", OTHER, 10, "energy"),
    Scan(0, "sorted", COLA, 5, "residual"), Scan(0, "sorted", OTHER, 3, UNMAPPED_STREAM),
    Scan(0, "sorted", CAN, 30, "aluminium"),
    Scan(1, "sold", COLA, 50), Scan(1, "sold", CRATE, 2),
    Scan(1, "returned", COLA, 45), Scan(1, "returned", CRATE, 2),
    Scan(1, "sorted", COLA, 40, "PET", weight_g=790), Scan(1, "sorted", CRATE, 1, "reuse"),
]  # fmt: skip
OUTCOME_OF = {"PET": "recycling", "aluminium": "recycling", "energy": "energy_recovery",
              "residual": "residual", "reuse": "reuse", UNMAPPED_STREAM: "unmapped"}  # fmt: skip


def months(today: date | None = None) -> tuple[date, date, date]:
    """The first days of two months ago, last month and this month (UTC): the scenario's
    two whole months, inside the targets' latest 12."""
    this = (today or datetime.now(UTC).date()).replace(day=1)
    last = (this - timedelta(days=1)).replace(day=1)
    before = (last - timedelta(days=1)).replace(day=1)
    return before, last, this


def register(put: Callable[[str, dict[str, Any]], int]) -> None:
    """The registry through the API: `put(path, body)` returns the status."""
    for type_id, body in PACKAGING.items():
        assert put(f"/v1/packaging-types/{type_id}", body) == 201, type_id
    for gtin, body in PRODUCTS.items():
        assert put(f"/v1/products/{gtin}", body) == 201, gtin


def add_devices(db: psycopg.Connection[Any]) -> None:
    db.execute(
        "INSERT INTO sites (id, name, kind) VALUES ('shop-1', 'Shop 1', 'shop'),"
        " ('sort-1', 'Sorting 1', 'sorting')"
    )
    db.execute(
        "INSERT INTO devices (id, site_id, kind) VALUES ('pos-1', 'shop-1', 'pos'),"
        " ('rvm-1', 'shop-1', 'rvm'), ('sorter-1', 'sort-1', 'sorter')"
    )


DEVICE_OF = {"sold": "pos-1", "returned": "rvm-1", "sorted": "sorter-1"}


def device_events(today: date | None = None) -> dict[str, list[dict[str, Any]]]:
    """The plan as devices send it, per device: each on the 10th of its month at noon UTC."""
    starts = months(today)
    sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for scan in PLAN:
        day = starts[scan.month]
        event: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "ts": datetime(day.year, day.month, 10, 12, tzinfo=UTC).isoformat(),
            "type": scan.type,
            "gtin": scan.gtin,
            "qty": scan.qty,
        }
        if scan.stream is not None:
            event["stream"] = scan.stream
        if scan.weight_g is not None:
            event["weight_g"] = scan.weight_g
        sent[DEVICE_OF[scan.type]].append(event)
    return dict(sent)


def _declared(gtin: str) -> dict[str, Any]:
    product = PRODUCTS[gtin]
    return {**PACKAGING[product["packaging_type"]], **product}


def expected(brand: str | None = None) -> dict[tuple[int, str], dict[str, float]]:
    """kg per (month, material), as docs/materials.md defines them, of all brands or one."""
    figures: dict[tuple[int, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for scan in PLAN:
        declared = _declared(scan.gtin)
        if brand is not None and declared["brand"] != brand:
            continue
        grams = scan.weight_g if scan.weight_g is not None else scan.qty * declared["weight_g"]
        kg = grams / 1000
        row = figures[(scan.month, declared["material"])]
        if scan.type == "sold":
            row["placed_kg"] += kg
            row["recycled_content_kg"] += kg * declared.get("recycled_content_pct", 0) / 100
            row["renewable_content_kg"] += kg * declared.get("renewable_content_pct", 0) / 100
            row["fibre_kg"] += kg if declared.get("fibre_based") else 0
        elif scan.type == "returned":
            row["collected_kg"] += kg
        else:
            assert scan.stream is not None
            row["sorted_kg"] += kg
            row[f"sorted_{OUTCOME_OF[scan.stream]}_kg"] += kg
    return {key: dict(row) for key, row in figures.items()}
