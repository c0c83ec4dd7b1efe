"""Producers and consumers of one-way deposit containers: each period (a day by default)
consumers buy containers (more in summer and at weekends), producers declare the units
sold as one `sold` event per product with `qty` > 1, and most units come back to an RVM
days later, during the shop's opening hours."""

from __future__ import annotations

import math
import random
from datetime import datetime, time, timedelta
from functools import partial
from itertools import accumulate

from devices.simulator.clock import days_us, seconds_us, to_datetime, to_us
from devices.simulator.engine import Engine
from devices.simulator.rvm import RvmFleet
from devices.simulator.scenario import OneWayParams
from devices.simulator.world import ProductInfo, World

# Relative sales per local weekday, Monday first (Friday and Saturday shopping, shops
# mostly closed on Sunday).
WEEKDAY_SALES = (0.9, 0.9, 0.95, 1.0, 1.3, 1.35, 0.6)
# Day of the year sales peak (mid-July).
PEAK_DAY = 196
# The declaration of a period arrives this many hours after it ends (a nightly job),
# one product after the other.
DECLARE_AFTER_H = 2.0
DECLARE_GAP_S = 7.0
# Mean above which a Poisson draw is approximated by a normal one.
POISSON_NORMAL_ABOVE = 50.0


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count (normal approximation for large means)."""
    if mean <= 0:
        return 0
    if mean > POISSON_NORMAL_ABOVE:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class OneWayMarket:
    """Sales, declarations and returns of every one-way product."""

    def __init__(
        self,
        engine: Engine,
        world: World,
        params: OneWayParams,
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
        total_share = sum(p.share for p in world.one_way) or 1.0
        self._shares = {p: p.share / total_share for p in world.one_way}
        self._shops = list(world.shops)
        self._shop_cumulative = list(accumulate(shop.weight for shop in world.shops))
        self._period_us = max(days_us(params.declare_every.total_seconds() / 86_400), 1)
        self._zone = world.shops[0].hours.zone

    def start(self) -> None:
        """The first period starts at local midnight of the first simulated day."""
        local = to_datetime(self._engine.now_us, self._zone)
        midnight = datetime.combine(local.date(), time(), self._zone)
        self._engine.at(self._engine.now_us, partial(self._period, to_us(midnight)))

    def _demand(self, start_us: int) -> float:
        """Expected units sold in the period starting at `start_us`, all products."""
        local = to_datetime(start_us, self._zone)
        days = self._period_us / days_us(1)
        season = 1 + self._params.seasonality * math.cos(
            2 * math.pi * (local.timetuple().tm_yday - PEAK_DAY) / 365.25
        )
        weekday = WEEKDAY_SALES[local.weekday()] if days <= 1 else 1.0
        per_day = self._params.units_per_shop_day * len(self._shops) * self._scale
        return per_day * days * season * weekday

    def _period_end(self, start_us: int) -> int:
        """Whole-day periods end at a local midnight (23 or 25 hours on DST days)."""
        every = self._params.declare_every
        if every % timedelta(days=1):
            return start_us + self._period_us
        local = to_datetime(start_us, self._zone).date() + every
        return to_us(datetime.combine(local, time(), self._zone))

    def _period(self, start_us: int) -> None:
        end_us = self._period_end(start_us)
        demand = self._demand(start_us)
        declare_at = end_us + seconds_us(3600 * DECLARE_AFTER_H)
        lag_mu = math.log(self._params.return_lag_days_median)
        for k, product in enumerate(sorted(self._shares, key=lambda p: p.gtin)):
            units = poisson(self._rng, demand * self._shares[product])
            for _ in range(units):
                if self._rng.random() >= self._params.return_probability:
                    continue
                bought = start_us + self._rng.randrange(end_us - start_us)
                lag = self._rng.lognormvariate(lag_mu, self._params.return_lag_sigma)
                shop = self._rng.choices(self._shops, cum_weights=self._shop_cumulative)[0]
                at = shop.hours.snap(bought + days_us(lag), self._rng)
                self._engine.at(at, partial(self._fleet.return_one_way, shop, product))
            if units:
                at = declare_at + seconds_us(k * DECLARE_GAP_S)
                self._engine.at(at, partial(self._declare, product, units, start_us, end_us))
        self._engine.at(end_us, partial(self._period, end_us))

    def _declare(self, product: ProductInfo, units: int, start_us: int, end_us: int) -> None:
        self._engine.emit(
            self._world.producers[product.brand], "sold", product.gtin, qty=units,
            attrs={"period_from": to_datetime(start_us, self._zone).isoformat(),
                   "period_to": to_datetime(end_us, self._zone).isoformat()},
        )  # fmt: skip
