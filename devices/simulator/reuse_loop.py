"""Reusable items (refillable bottles, crates): serialised items cycling filled → sold →
returned → sorted (stream `reuse`) → washed → filled, with losses on the market, breakage
and end of life at sorting, lognormal trip durations, and cloned labels whose copies come
back as duplicate returns (SPEC §7)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import partial

from devices.simulator.clock import US_PER_DAY, days_us, seconds_us
from devices.simulator.engine import Engine
from devices.simulator.rvm import RvmFleet
from devices.simulator.scenario import ReuseLoopParams
from devices.simulator.world import ProductInfo, Shop, World

# Serials: Crockford base32 (a subset of the GS1 AI 21 character set, no I/L/O/U to
# misread), 12 characters = 60 bits.
SERIAL_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SERIAL_LENGTH = 12
# Hours from commissioning to the first filling, and from washing to filling.
TO_FILLING_H = (1.0, 20.0)
# Minutes from sorting out of the loop to the recycled/retired scan.
DISPOSAL_MIN = (1.0, 30.0)
# When a cloned label comes back after the original's return (days).
CLONE_DELAY_DAYS = (0.01, 2.0)
WEEK_US = 7 * US_PER_DAY


@dataclass(eq=False)
class Item:
    """One physical reusable item."""

    serial: str
    product: ProductInfo
    loop: ReuseLoop
    cloned: bool
    trips: int = 0


class ReuseLoop:
    """The pool of one reusable packaging type."""

    def __init__(
        self,
        engine: Engine,
        world: World,
        params: ReuseLoopParams,
        rng: random.Random,
        fleet: RvmFleet,
        scale: float,
    ) -> None:
        self._engine = engine
        self._world = world
        self._params = params
        self._rng = rng
        self._fleet = fleet
        self._scale = scale
        self.product = world.reusable[params.packaging_type]
        self._serials: set[str] = set()
        self._shops = list(world.shops)
        self._shop_weights = [shop.weight for shop in world.shops]

    def start(self) -> None:
        """Commission the pool over `commission_over`, then new items every week."""
        now = self._engine.now_us
        span = max(days_us(self._params.commission_over.total_seconds() / 86_400), 1)
        for _ in range(round(self._params.pool * self._scale)):
            self._engine.at(now + self._rng.randrange(span), self._commission)
        if self._params.new_items_per_week > 0:
            self._engine.at(now + WEEK_US, self._weekly)

    def _weekly(self) -> None:
        mean = self._params.new_items_per_week * self._scale
        count = math.floor(mean) + (self._rng.random() < mean % 1)
        for _ in range(count):
            self._engine.at(self._engine.now_us + self._rng.randrange(WEEK_US), self._commission)
        self._engine.at(self._engine.now_us + WEEK_US, self._weekly)

    def _new_serial(self) -> str:
        while True:
            serial = "".join(self._rng.choices(SERIAL_ALPHABET, k=SERIAL_LENGTH))
            if serial not in self._serials:
                self._serials.add(serial)
                return serial

    def _commission(self) -> None:
        cloned = self._rng.random() < self._params.clone_share
        item = Item(self._new_serial(), self.product, self, cloned)
        plant = self._world.plant
        self._engine.emit(plant.filler, "commissioned", item.product.gtin, serial=item.serial)
        self._to_filling(item)

    def _to_filling(self, item: Item) -> None:
        plant = self._world.plant
        later = self._engine.now_us + seconds_us(3600 * self._rng.uniform(*TO_FILLING_H))
        self._engine.at(plant.hours.snap(later, self._rng), partial(self._fill, item))

    def _fill(self, item: Item) -> None:
        self._engine.emit(self._world.plant.filler, "filled", item.product.gtin, serial=item.serial)
        shop = self._rng.choices(self._shops, self._shop_weights)[0]
        later = self._engine.now_us + days_us(self._rng.uniform(*self._params.delivery_days))
        self._engine.at(shop.hours.snap(later, self._rng), partial(self._sell, item, shop))

    def _sell(self, item: Item, shop: Shop) -> None:
        self._engine.emit(shop.pos, "sold", item.product.gtin, serial=item.serial)
        if self._rng.random() < self._params.loss_probability:
            return  # kept, thrown away or taken abroad: never seen again
        days = self._rng.lognormvariate(
            math.log(self._params.trip_days_median), self._params.trip_days_sigma
        )
        back = shop
        if self._rng.random() >= self._params.same_shop_return:
            back = self._rng.choices(self._shops, self._shop_weights)[0]
        later = self._engine.now_us + days_us(days)
        self._engine.at(
            back.hours.snap(later, self._rng), partial(self._fleet.return_item, back, item)
        )

    def after_return(self, item: Item, shop: Shop) -> None:
        """Called by the RVM that took `item` back: a trip done; a cloned label may follow."""
        item.trips += 1
        if item.cloned and self._rng.random() < self._params.clone_duplicate_probability:
            others = [s for s in self._shops if s is not shop] or self._shops
            other = self._rng.choice(others)
            later = self._engine.now_us + days_us(self._rng.uniform(*CLONE_DELAY_DAYS))
            self._engine.at(
                other.hours.snap(later, self._rng), partial(self._fleet.return_clone, other, item)
            )

    def sort(self, item: Item, sorter: str) -> None:
        """At the sorting site: back to the loop, or out of it (broken, end of life)."""
        target = self.product.packaging.target_trips
        worn_out = self._params.retire_at_target and target is not None and item.trips >= target
        broken = self._rng.random() < self._params.breakage_probability
        gtin = item.product.gtin
        if not (worn_out or broken):
            self._engine.emit(sorter, "sorted", gtin, serial=item.serial, stream="reuse")
            plant = self._world.plant
            later = self._engine.now_us + days_us(
                self._rng.uniform(*self._params.turnaround_days) / 2
            )
            self._engine.at(plant.hours.snap(later, self._rng), partial(self._wash, item))
            return
        self._engine.emit(sorter, "sorted", gtin, serial=item.serial, stream=item.product.stream)
        # Broken glass goes to cullet; a worn-out or broken crate is written off.
        glass = item.product.packaging.material == "glass"
        disposal = "recycled" if broken and glass else "retired"
        later = self._engine.now_us + seconds_us(60 * self._rng.uniform(*DISPOSAL_MIN))
        self._engine.at(later, partial(self._dispose, item, sorter, disposal))

    def _dispose(self, item: Item, sorter: str, disposal: str) -> None:
        self._engine.emit(sorter, disposal, item.product.gtin, serial=item.serial)

    def _wash(self, item: Item) -> None:
        self._engine.emit(self._world.plant.washer, "washed", item.product.gtin, serial=item.serial)
        self._to_filling(item)
