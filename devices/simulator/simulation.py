"""One run of a scenario's world, independent of any transport: the scans every device
makes, in time order, between two instants (or forever), the same for the same scenario
and instants."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime

from devices.simulator.clock import to_us
from devices.simulator.engine import Engine
from devices.simulator.producers import OneWayMarket
from devices.simulator.reuse_loop import ReuseLoop
from devices.simulator.rvm import RvmFleet
from devices.simulator.scan import Scan
from devices.simulator.scenario import Scenario
from devices.simulator.sorting import SortingNetwork
from devices.simulator.world import World, build_world


class Simulation:
    """The world of `scenario` simulated from `start - warmup`; `scans()` yields the scans
    from `start` (inclusive) to `end` (exclusive; None: never ends)."""

    def __init__(self, scenario: Scenario, start: datetime, end: datetime | None) -> None:
        self.scenario = scenario
        self.world: World = build_world(scenario)
        self.start_us = to_us(start)
        self.end_us = None if end is None else to_us(end)
        rng = random.Random(f"looptrack-sim:{scenario.seed}")
        self._engine = Engine(self.start_us - round(scenario.timing.warmup.total_seconds() * 1e6))
        sorting = SortingNetwork(self._engine, self.world, scenario.sorting, rng)
        fleet = RvmFleet(self._engine, self.world, scenario.rvm, rng, sorting)
        self.loops = [
            ReuseLoop(self._engine, self.world, params, rng, fleet, scenario.scale)
            for params in scenario.reuse
        ]
        market = OneWayMarket(
            self._engine, self.world, scenario.one_way, rng, fleet, scenario.scale
        )
        sorting.start()
        for loop in self.loops:
            loop.start()
        market.start()

    def scans(self) -> Iterator[Scan]:
        """The scans from `start`, in time order (warmup scans are simulated, not given)."""
        for scan in self._engine.run(self.end_us):
            if self._engine.now_us >= self.start_us:
                yield scan
