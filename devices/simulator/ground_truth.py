"""Ground truth of a simulation: the numbers `/v1/stats/return-rates?bucket=total`,
`/v1/stats/reuse` and `/v1/stats/materials?bucket=total` must answer, computed from the
published events by following SPEC §7 and docs/materials.md literally (independently of
the API and its SQL), in the API's output shape.

`GroundTruth(registry)` collects events as they are published (`add`);
`return_rates(start, end)`, `reuse(as_of)` and `materials(start, end)` give the rows;
`summary(...)` the JSON that `looptrack simulate --truth FILE` writes."""

from __future__ import annotations

import math
import statistics
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from devices.simulator.clock import to_us
from devices.simulator.scan import Scan
from schemas.gtin import normalize_gtin
from schemas.registry import PackagingType, SeedFile

# As in SPEC §7 and the API's default: an item whose latest event is `sold`/`filled` older
# than this is lost (days).
DEFAULT_LOSS_AFTER_DAYS = 180
COUNTED = ("sold", "returned", "rejected")
LOOP_TYPES = ("sold", "filled", "returned")
US_PER_DAY = 86_400 * 1_000_000
KG = Decimal(1000)
GRAM_PRECISION = Decimal("0.001")  # kg are reported to the gram
PERCENT = Decimal(100)
# Events that move packaging by weight (docs/materials.md).
FLOW_TYPES = ("sold", "returned", "sorted")
# Where each sorting stream goes, as migration 0014_material_flows seeds the
# sorting_streams table (docs/materials.md); a stream not in it counts as unmapped.
SEEDED_STREAM_OUTCOMES: dict[str, str] = {
    "reuse": "reuse",
    "PET": "material_recycling",
    "HDPE": "material_recycling",
    "PP": "material_recycling",
    "glass": "material_recycling",
    "aluminium": "material_recycling",
    "steel": "material_recycling",
    "fibre": "material_recycling",
    "energy": "energy_recovery",
    "residual": "residual",
}
UNMAPPED = "unmapped"
# The row field of each outcome's sorted kg.
SORTED_FIELDS = {
    "reuse": "sorted_reuse_kg",
    "material_recycling": "sorted_recycling_kg",
    "energy_recovery": "sorted_energy_recovery_kg",
    "residual": "sorted_residual_kg",
    UNMAPPED: "sorted_unmapped_kg",
}
# The kg fields of a materials row, in the API's order.
MATERIAL_KG_FIELDS = (
    "placed_kg",
    "collected_kg",
    "sorted_kg",
    *SORTED_FIELDS.values(),
    "recycled_content_kg",
    "renewable_content_kg",
    "fibre_kg",
)
# Each rate of a materials row: (numerator, denominator), both kg fields of the row.
MATERIAL_RATES = {
    "collection_rate": ("collected_kg", "placed_kg"),
    "material_recycling_rate": ("sorted_recycling_kg", "placed_kg"),
    "reuse_share": ("sorted_reuse_kg", "sorted_kg"),
    "recycled_content_share": ("recycled_content_kg", "placed_kg"),
    "renewable_content_share": ("renewable_content_kg", "placed_kg"),
    "fibre_share": ("fibre_kg", "placed_kg"),
}


@dataclass(frozen=True, slots=True)
class _Seen:
    ts_us: int
    order: tuple[int, int]  # (event_id as a UUID's integer, arrival): ties in ts
    type: str


def percentile_disc(ordered: list[int], fraction: float) -> int:
    """The first value whose cumulative share reaches `fraction` (SQL percentile_disc)."""
    return ordered[max(math.ceil(fraction * len(ordered)), 1) - 1]


def percentile_cont(ordered: list[float], fraction: float) -> float:
    """Linear interpolation between the two closest ranks (SQL percentile_cont)."""
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def kilograms(count: int, weight_g: Decimal | None) -> float | None:
    """`count` packages of `weight_g` grams in kg, rounded half away from zero to the gram."""
    if weight_g is None:
        return None
    return float(_to_kg(count * weight_g))


def _to_kg(grams: Decimal) -> Decimal:
    """Grams as kg, rounded half away from zero to the gram."""
    return (grams / KG).quantize(GRAM_PRECISION, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Declaration:
    """What a product declares for the material figures: its packaging type's material,
    weight (g) and content figures, overridden by the product's own."""

    material: str
    weight_g: Decimal | None
    recycled_content_pct: Decimal
    renewable_content_pct: Decimal
    fibre_based: bool


def declarations(registry: SeedFile) -> dict[str, Declaration]:
    """Each registered GTIN's declaration (GTIN-14 keys)."""
    types = {t.id: t for t in registry.packaging_types}
    result = {}
    for product in registry.products:
        kind = types[product.packaging_type]
        result[normalize_gtin(product.gtin)] = Declaration(
            material=kind.material.value,
            weight_g=kind.weight_g,
            recycled_content_pct=(
                kind.recycled_content_pct
                if product.recycled_content_pct is None
                else product.recycled_content_pct
            ),
            renewable_content_pct=(
                kind.renewable_content_pct
                if product.renewable_content_pct is None
                else product.renewable_content_pct
            ),
            fibre_based=kind.fibre_based if product.fibre_based is None else product.fibre_based,
        )
    return result


@dataclass(frozen=True, slots=True)
class _Flow:
    """A sold, returned or sorted event, as the material figures need it."""

    ts_us: int
    gtin: str
    type: str
    qty: int
    stream: str | None
    measured_g: Decimal | None  # a sorted event's measured weight of all qty


class GroundTruth:
    """The published events, reduced to what the statistics need."""

    def __init__(
        self, registry: SeedFile, stream_outcomes: Mapping[str, str] = SEEDED_STREAM_OUTCOMES
    ) -> None:
        """`stream_outcomes`: each sorting stream's outcome (reuse, material_recycling,
        energy_recovery, residual), as the registry's sorting_streams table has them."""
        self._types: dict[str, PackagingType] = {t.id: t for t in registry.packaging_types}
        self._product_type = {normalize_gtin(p.gtin): p.packaging_type for p in registry.products}
        self._declarations = declarations(registry)
        self._stream_outcomes = dict(stream_outcomes)
        # (ts µs, gtin14, type, qty) of every sold/returned/rejected event.
        self._counted: list[tuple[int, str, str, int]] = []
        self._flows: list[_Flow] = []
        self._items: dict[tuple[str, str], list[_Seen]] = defaultdict(list)
        self.events = 0
        self.by_type: Counter[str] = Counter()
        self.sorted_by_stream: Counter[str] = Counter()
        self.first: datetime | None = None
        self.last: datetime | None = None

    def add(self, scan: Scan, event_id: str | None = None) -> None:
        """One published event; `event_id` (the idempotency key) orders events of one item
        with the same `ts` as the database does, else arrival order does."""
        gtin = normalize_gtin(scan.gtin)
        ts_us = to_us(scan.ts)
        self.events += 1
        self.by_type[scan.type] += scan.qty
        if scan.type == "sorted" and scan.stream:
            self.sorted_by_stream[scan.stream] += scan.qty
        if self.first is None or scan.ts < self.first:
            self.first = scan.ts
        if self.last is None or scan.ts > self.last:
            self.last = scan.ts
        if scan.type in COUNTED:
            self._counted.append((ts_us, gtin, scan.type, scan.qty))
        if scan.type in FLOW_TYPES:
            # The decimal the device sent (JSON), not the float's binary expansion.
            measured = None if scan.weight_g is None else Decimal(repr(scan.weight_g))
            self._flows.append(_Flow(ts_us, gtin, scan.type, scan.qty, scan.stream, measured))
        if scan.serial is not None:
            tie = uuid.UUID(event_id).int if event_id else 0
            self._items[(gtin, scan.serial)].append(_Seen(ts_us, (tie, self.events), scan.type))

    def return_rates(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """`/v1/stats/return-rates?bucket=total&from=start&to=end` rows: per packaging type
        (None for GTINs not registered) with any sold/returned/rejected event in
        [start, end)."""
        low, high = to_us(start), to_us(end)
        sums: dict[str | None, Counter[str]] = defaultdict(Counter)
        for ts_us, gtin, kind, qty in self._counted:
            if low <= ts_us < high:
                sums[self._product_type.get(gtin)][kind] += qty
        rows = []
        for packaging in sorted(sums, key=lambda p: (p is None, p or "")):
            sold, returned, rejected = (sums[packaging][k] for k in COUNTED)
            weight = self._types[packaging].weight_g if packaging is not None else None
            rows.append(
                {
                    "bucket_start": start.isoformat(),
                    "packaging_type": packaging,
                    "sold": sold,
                    "returned": returned,
                    "rejected": rejected,
                    "return_rate": returned / sold if sold else None,
                    "sold_kg": kilograms(sold, weight),
                    "returned_kg": kilograms(returned, weight),
                }
            )
        return rows

    def materials(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """`/v1/stats/materials?bucket=total&from=start&to=end` rows (docs/materials.md):
        per material (None for GTINs not registered) with any sold, returned or sorted
        event in [start, end), in material order, None last. kg are rounded to the gram;
        each rate is its exact numerator / exact denominator (None when that is 0), as
        the API computes it before rounding the kg."""
        low, high = to_us(start), to_us(end)
        grams: dict[str | None, dict[str, Decimal]] = {}
        unweighed: Counter[str | None] = Counter()
        for flow in self._flows:
            if not low <= flow.ts_us < high:
                continue
            declaration = self._declarations.get(flow.gtin)
            material = declaration.material if declaration is not None else None
            sums = grams.setdefault(material, defaultdict(Decimal))
            if flow.type == "sorted" and flow.measured_g is not None:
                weight = flow.measured_g
            elif declaration is not None and declaration.weight_g is not None:
                weight = flow.qty * declaration.weight_g
            else:
                unweighed[material] += flow.qty
                continue
            if flow.type == "sold":
                assert declaration is not None  # a sold event's weight is a declared one
                sums["placed_kg"] += weight
                sums["recycled_content_kg"] += weight * declaration.recycled_content_pct / PERCENT
                sums["renewable_content_kg"] += weight * declaration.renewable_content_pct / PERCENT
                if declaration.fibre_based:
                    sums["fibre_kg"] += weight
            elif flow.type == "returned":
                sums["collected_kg"] += weight
            else:
                outcome = self._stream_outcomes.get(flow.stream or "", UNMAPPED)
                sums["sorted_kg"] += weight
                sums[SORTED_FIELDS[outcome]] += weight
        rows = []
        for material in sorted(grams, key=lambda m: (m is None, m or "")):
            exact = grams[material]
            rows.append(
                {
                    "bucket_start": start.isoformat(),
                    "material": material,
                    **{name: float(_to_kg(exact[name])) for name in MATERIAL_KG_FIELDS},
                    "unweighed_qty": unweighed[material],
                    **{
                        rate: float(exact[above] / exact[below]) if exact[below] else None
                        for rate, (above, below) in MATERIAL_RATES.items()
                    },
                }
            )
        return rows

    def duplicate_returns(self) -> int:
        """Returns that follow another return of the item with no sold/filled between."""
        count = 0
        for events in self._items.values():
            previous = None
            for seen in sorted(events, key=lambda s: (s.ts_us, s.order)):
                if seen.type in LOOP_TYPES:
                    count += seen.type == "returned" and previous == "returned"
                    previous = seen.type
        return count

    def reuse(
        self, as_of: datetime, loss_after_days: int = DEFAULT_LOSS_AFTER_DAYS
    ) -> list[dict[str, Any]]:
        """`/v1/stats/reuse?loss_after_days=…` rows as of the instant `as_of`: one per
        packaging type with serialised items of registered products."""
        lost_before = to_us(as_of) - loss_after_days * US_PER_DAY
        trips_of: dict[str, list[int]] = defaultdict(list)
        days_of: dict[str, list[float]] = defaultdict(list)
        lost: Counter[str] = Counter()
        in_loop: Counter[str] = Counter()
        for (gtin, _serial), events in self._items.items():
            packaging = self._product_type.get(gtin)
            if packaging is None:
                continue
            ordered = sorted(events, key=lambda s: (s.ts_us, s.order))
            trips, previous = 0, None
            first_sold: int | None = None
            first_filled: int | None = None
            for seen in ordered:
                if seen.type not in LOOP_TYPES:
                    continue
                if seen.type == "returned" and previous != "returned":
                    # A trip ends: from its first sold (else first filled) since the last.
                    trips += 1
                    opened = first_sold if first_sold is not None else first_filled
                    if opened is not None:
                        days_of[packaging].append((seen.ts_us - opened) / US_PER_DAY)
                    first_sold = first_filled = None
                elif seen.type == "sold" and first_sold is None:
                    first_sold = seen.ts_us
                elif seen.type == "filled" and first_filled is None:
                    first_filled = seen.ts_us
                previous = seen.type
            trips_of[packaging].append(trips)
            in_loop[packaging] += any(s.type in ("sold", "filled") for s in ordered)
            latest = ordered[-1]
            lost[packaging] += latest.type in ("sold", "filled") and latest.ts_us < lost_before
        rows = []
        for packaging in sorted(trips_of):
            per_item = sorted(trips_of[packaging])
            days = sorted(days_of[packaging])
            kind = self._types[packaging]
            target = kind.target_trips
            histogram = Counter(per_item)
            rows.append(
                {
                    "packaging_type": packaging,
                    "items": len(per_item),
                    "trips": sum(per_item),
                    "mean_trips": sum(per_item) / len(per_item),
                    "p50_trips": percentile_disc(per_item, 0.5),
                    "p90_trips": percentile_disc(per_item, 0.9),
                    "max_trips": per_item[-1],
                    "target_trips": target,
                    "reached_target": (
                        sum(t >= target for t in per_item)
                        if kind.reusable and target is not None
                        else None
                    ),
                    "mean_trip_days": statistics.fmean(days) if days else None,
                    "median_trip_days": percentile_cont(days, 0.5) if days else None,
                    "lost": lost[packaging],
                    "loss_rate": (
                        lost[packaging] / in_loop[packaging] if in_loop[packaging] else None
                    ),
                    "histogram": [{"trips": t, "items": n} for t, n in sorted(histogram.items())],
                }
            )
        return rows

    def summary(
        self,
        window: tuple[datetime, datetime],
        as_of: datetime,
        loss_after_days: int = DEFAULT_LOSS_AFTER_DAYS,
        tz: str = "UTC",
    ) -> dict[str, Any]:
        """Everything to compare with the API, with the queries that should answer it."""
        start, end = window
        return {
            "events": self.events,
            "first_ts": self.first.isoformat() if self.first else None,
            "last_ts": self.last.isoformat() if self.last else None,
            "qty_by_event_type": dict(sorted(self.by_type.items())),
            "sorted_by_stream": dict(sorted(self.sorted_by_stream.items())),
            "duplicate_returns": self.duplicate_returns(),
            "return_rates": {
                "query": {
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                    "bucket": "total",
                    "tz": tz,
                },
                "rows": self.return_rates(start, end),
            },
            "materials": {
                "query": {
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                    "bucket": "total",
                    "tz": tz,
                },
                "rows": self.materials(start, end),
            },
            "reuse": {
                "query": {"loss_after_days": loss_after_days},
                "as_of": as_of.isoformat(),
                "note": "`lost` grows as items age: compare soon after as_of",
                "rows": self.reuse(as_of, loss_after_days),
            },
        }


def day_window(first: datetime, last: datetime, tz: Any) -> tuple[datetime, datetime]:
    """Whole local days of `tz` around [first, last]: local midnight on or before `first`
    to local midnight after `last` (the bounds the API answers from its day rollups)."""
    start_day = first.astimezone(tz).date()
    end_day = last.astimezone(tz).date() + timedelta(days=1)
    return (
        datetime.combine(start_day, datetime.min.time(), tz),
        datetime.combine(end_day, datetime.min.time(), tz),
    )
