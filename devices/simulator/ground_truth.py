"""Ground truth of a simulation: the numbers `/v1/stats/return-rates?bucket=total` and
`/v1/stats/reuse` must answer, computed from the published events by following SPEC §7
literally (independently of the API and its SQL), in the API's output shape.

`GroundTruth(registry)` collects events as they are published (`add`);
`return_rates(start, end)` and `reuse(as_of)` give the rows; `summary(...)` the JSON that
`looptrack simulate --truth FILE` writes."""

from __future__ import annotations

import math
import statistics
import uuid
from collections import Counter, defaultdict
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
    return float((count * weight_g / KG).quantize(GRAM_PRECISION, rounding=ROUND_HALF_UP))


class GroundTruth:
    """The published events, reduced to what the statistics need."""

    def __init__(self, registry: SeedFile) -> None:
        self._types: dict[str, PackagingType] = {t.id: t for t in registry.packaging_types}
        self._product_type = {normalize_gtin(p.gtin): p.packaging_type for p in registry.products}
        # (ts µs, gtin14, type, qty) of every sold/returned/rejected event.
        self._counted: list[tuple[int, str, str, int]] = []
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
