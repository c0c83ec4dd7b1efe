"""Reverse-vending machines: they take containers back during the shop's opening hours,
refuse some with realistic reasons (and let the customer retry), weigh each one and
report how full their bin is."""

from __future__ import annotations

import random
from datetime import date
from functools import partial
from typing import TYPE_CHECKING

from devices.simulator.clock import seconds_us, to_datetime
from devices.simulator.engine import Engine
from devices.simulator.scenario import RvmParams
from devices.simulator.world import ProductInfo, Shop, World
from schemas.events import RejectReason

if TYPE_CHECKING:
    from devices.simulator.reuse_loop import Item
    from devices.simulator.sorting import SortingNetwork

# Seconds between a refusal and the customer's next try, and between two containers of
# one customer (a foreign can slipped in among the others).
RETRY_DELAY_S = (4.0, 40.0)
NEXT_CONTAINER_S = (2.0, 30.0)
# Liquid left in a container refused as not_empty (g).
LEFTOVER_G = (40.0, 400.0)
# A container from abroad weighs anything from a can to a big bottle (g).
FOREIGN_WEIGHT_G = (12.0, 60.0)


class RvmFleet:
    """Every RVM of every shop; containers accepted go to the shop's store for collection."""

    def __init__(
        self,
        engine: Engine,
        world: World,
        params: RvmParams,
        rng: random.Random,
        sorting: SortingNetwork,
    ) -> None:
        self._engine = engine
        self._world = world
        self._params = params
        self._rng = rng
        self._sorting = sorting
        self._reasons = [r for r, w in params.reasons.items() if w > 0]
        self._reason_weights = [params.reasons[r] for r in self._reasons]
        # rvm → (local day, containers in its bin): bins are emptied every evening and
        # swapped when full.
        self._bins: dict[str, tuple[date, int]] = {}

    def _fill_level_pct(self, rvm: str, shop: Shop, accepted: bool) -> float:
        day = to_datetime(self._engine.now_us, shop.hours.zone).date()
        last_day, count = self._bins.get(rvm, (day, 0))
        if last_day != day:
            count = 0
        if accepted:
            count = count + 1 if count < self._params.bin_capacity else 1
        self._bins[rvm] = (day, count)
        return round(100 * count / self._params.bin_capacity, 1)

    def _weight(self, product: ProductInfo) -> float:
        return round(max(product.weight_g + self._rng.gauss(0, self._params.weight_noise_g), 1), 1)

    def return_one_way(self, shop: Shop, product: ProductInfo, rvm: str | None = None) -> None:
        """A customer inserts one deposit container now; `rvm` is set on a retry."""
        rng = self._rng
        retry = rvm is not None
        machine = rvm or rng.choice(shop.rvms)
        if not retry and self._reasons and rng.random() < self._params.reject_probability:
            reason = rng.choices(self._reasons, self._reason_weights)[0]
            weight = self._weight(product)
            if reason is RejectReason.NOT_EMPTY:
                weight += round(rng.uniform(*LEFTOVER_G), 1)
            elif reason is RejectReason.DAMAGED:
                weight = round(weight * rng.uniform(0.85, 1.0), 1)
            self._engine.emit(
                machine, "rejected", product.gtin, reason=reason.value,
                attrs={"weight_g": weight,
                       "fill_level_pct": self._fill_level_pct(machine, shop, False)},
            )  # fmt: skip
            if rng.random() < self._params.retry_success.get(reason, 0.0):
                later = self._engine.now_us + seconds_us(rng.uniform(*RETRY_DELAY_S))
                self._engine.at(later, partial(self.return_one_way, shop, product, machine))
        else:
            self._engine.emit(
                machine, "returned", product.gtin,
                attrs={"weight_g": self._weight(product),
                       "fill_level_pct": self._fill_level_pct(machine, shop, True)},
            )  # fmt: skip
            self._sorting.store_container(shop, product)
        if not retry and rng.random() < self._params.foreign_share:
            later = self._engine.now_us + seconds_us(rng.uniform(*NEXT_CONTAINER_S))
            self._engine.at(later, partial(self._foreign, shop, machine))

    def _foreign(self, shop: Shop, rvm: str) -> None:
        gtin = self._rng.choice(self._world.foreign_gtins)
        self._engine.emit(
            rvm, "rejected", gtin, reason=RejectReason.UNKNOWN_PRODUCT.value,
            attrs={"weight_g": round(self._rng.uniform(*FOREIGN_WEIGHT_G), 1),
                   "fill_level_pct": self._fill_level_pct(rvm, shop, False)},
        )  # fmt: skip

    def return_item(self, shop: Shop, item: Item) -> None:
        """A customer returns a serialised reusable item now (always accepted)."""
        machine = self._rng.choice(shop.rvms)
        self._engine.emit(
            machine, "returned", item.product.gtin, serial=item.serial,
            attrs={"weight_g": self._weight(item.product),
                   "fill_level_pct": self._fill_level_pct(machine, shop, True)},
        )  # fmt: skip
        self._sorting.store_item(shop, item)
        item.loop.after_return(item, shop)

    def return_clone(self, shop: Shop, item: Item) -> None:
        """A copy of `item`'s label comes back on another container: a duplicate return.
        The clone never enters the loop (the sorting site discards it unscanned)."""
        machine = self._rng.choice(shop.rvms)
        self._engine.emit(
            machine, "returned", item.product.gtin, serial=item.serial,
            attrs={"weight_g": self._weight(item.product),
                   "fill_level_pct": self._fill_level_pct(machine, shop, True)},
        )  # fmt: skip
