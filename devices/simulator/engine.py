"""A discrete-event scheduler: actions run in simulated-time order, each emitting scans
stamped with its own instant, so the scans come out in time order."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Any

from devices.simulator.clock import to_datetime
from devices.simulator.scan import Scan

Action = Callable[[], None]


class Engine:
    """Runs scheduled actions in time order (ties in scheduling order)."""

    def __init__(self, start_us: int) -> None:
        self.now_us = start_us
        self._queue: list[tuple[int, int, Action]] = []
        self._counter = 0
        self._outbox: list[Scan] = []

    def at(self, us: int, action: Action) -> None:
        """Run `action` at instant `us` (never before now)."""
        self._counter += 1
        heapq.heappush(self._queue, (max(us, self.now_us), self._counter, action))

    def emit(self, device_id: str, type_: str, gtin: str, **fields: Any) -> None:
        """A scan by `device_id`, now."""
        self._outbox.append(Scan(device_id, to_datetime(self.now_us), type_, gtin, **fields))

    def run(self, until_us: int | None = None) -> Iterator[Scan]:
        """Scans of the actions before `until_us` (None: forever), in time order."""
        while self._queue and (until_us is None or self._queue[0][0] < until_us):
            self.now_us, _, action = heapq.heappop(self._queue)
            action()
            if self._outbox:
                yield from self._outbox
                self._outbox.clear()
