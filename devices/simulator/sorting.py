"""Collection and sorting sites: trucks pick up what the shops' RVMs took back every few
days; the nearest sorting site counts one-way containers per product into their material
stream (a few contaminated or mis-sorted ones to energy recovery or residual waste), weighs
most counts on the line's scale, and sorts reusable items one by one (to `reuse`, or out
of the loop)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from devices.simulator.clock import US_PER_DAY, seconds_us
from devices.simulator.engine import Engine
from devices.simulator.producers import poisson
from devices.simulator.scenario import SortingParams
from devices.simulator.world import ProductInfo, Shop, SortingSite, World
from schemas.events import MAX_WEIGHT_G

if TYPE_CHECKING:
    from devices.simulator.reuse_loop import Item

# Hours from a shop pickup to the load's arrival at the sorting site.
TRANSPORT_H = (2.0, 8.0)
# When in the shop's opening window the truck comes (hours after opening).
PICKUP_AFTER_OPENING_H = (0.5, 3.0)


@dataclass
class Load:
    """What a shop's RVMs took back since the last pickup."""

    containers: Counter[ProductInfo] = field(default_factory=Counter)
    items: list[Item] = field(default_factory=list)


class SortingNetwork:
    def __init__(
        self, engine: Engine, world: World, params: SortingParams, rng: random.Random
    ) -> None:
        self._engine = engine
        self._world = world
        self._params = params
        self._rng = rng
        self._stores: dict[str, Load] = {shop.id: Load() for shop in world.shops}
        self._inbound: dict[str, list[Load]] = {site: [] for site in world.sorting_sites}

    def start(self) -> None:
        """Schedule the first pickup of every shop (staggered) and the first shift of every
        sorting site."""
        now = self._engine.now_us
        for shop in self._world.shops:
            first = now + self._rng.randrange(self._params.pickup_every_days * US_PER_DAY)
            self._engine.at(self._pickup_time(shop, first), partial(self._pickup, shop))
        for site in self._world.sorting_sites.values():
            self._engine.at(site.hours.next_window(now)[0], partial(self._shift, site))

    def store_container(self, shop: Shop, product: ProductInfo) -> None:
        self._stores[shop.id].containers[product] += 1

    def store_item(self, shop: Shop, item: Item) -> None:
        self._stores[shop.id].items.append(item)

    def _pickup_time(self, shop: Shop, after_us: int) -> int:
        opening = shop.hours.next_window(after_us)[0]
        return opening + seconds_us(3600 * self._rng.uniform(*PICKUP_AFTER_OPENING_H))

    def _pickup(self, shop: Shop) -> None:
        load, self._stores[shop.id] = self._stores[shop.id], Load()
        now = self._engine.now_us
        if load.containers or load.items:
            arrival = now + seconds_us(3600 * self._rng.uniform(*TRANSPORT_H))
            self._engine.at(arrival, partial(self._inbound[shop.sorting_site].append, load))
        after = now + self._params.pickup_every_days * US_PER_DAY - US_PER_DAY // 2
        self._engine.at(self._pickup_time(shop, after), partial(self._pickup, shop))

    def _shift(self, site: SortingSite) -> None:
        """Sort everything that arrived: counts per product spread over the shift, then the
        reusable items one by one."""
        loads, self._inbound[site.id] = self._inbound[site.id], []
        now = self._engine.now_us
        _, end = site.hours.next_window(now)
        counts: Counter[ProductInfo] = Counter()
        items: list[Item] = []
        for load in loads:
            counts.update(load.containers)
            items += load.items
        if counts:
            step = (end - now) // (len(counts) + 1)
            for k, (product, qty) in enumerate(sorted(counts.items(), key=lambda c: c[0].gtin)):
                sorter = site.sorters[k % len(site.sorters)]
                self._engine.at(
                    now + (k + 1) * step, partial(self._sort_count, sorter, product, qty)
                )
        interval = seconds_us(self._params.item_interval_s)
        for k, item in enumerate(items):
            sorter = site.sorters[k % len(site.sorters)]
            at = now + seconds_us(60) + k * interval
            self._engine.at(at, partial(item.loop.sort, item, sorter))
        self._engine.at(site.hours.next_opening_after(now), partial(self._shift, site))

    def _sort_count(self, sorter: str, product: ProductInfo, qty: int) -> None:
        """`qty` containers of `product` off the line: most to its material stream, the
        contaminated or mis-sorted ones (a Poisson share, never more than all) to its
        off-stream, each count weighed or not."""
        off = min(qty, poisson(self._rng, qty * self._params.off_stream_share))
        for stream, count in ((product.stream, qty - off), (product.off_stream, off)):
            if count:
                self._engine.emit(
                    sorter, "sorted", product.gtin, qty=count, stream=stream,
                    weight_g=self._measured_g(product, count),
                )  # fmt: skip

    def _measured_g(self, product: ProductInfo, qty: int) -> float | None:
        """What the line's scale reads for `qty` containers in whole grams (with the spread
        of residue, moisture and caps), or None when the count went unweighed. Whole grams
        also keep any sum of them exact in double precision, as the database sums them."""
        if self._rng.random() >= self._params.weighed_share:
            return None
        spread = self._params.weight_spread
        grams = round(qty * product.weight_g * self._rng.uniform(1 - spread, 1 + spread))
        return float(max(grams, 1)) if grams <= MAX_WEIGHT_G else None
