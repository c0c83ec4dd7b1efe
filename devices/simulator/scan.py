"""One simulated scan: what a device reports about a package at an instant, exactly the
fields of `DeviceClient.scan` (the client adds `event_id` and `seq`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Scan:
    device_id: str
    ts: datetime  # aware
    type: str  # an EventType value
    gtin: str
    serial: str | None = None
    qty: int = 1
    reason: str | None = None
    stream: str | None = None
    weight_g: float | None = None  # a sorted count's measured weight of all qty (g)
    attrs: dict[str, Any] | None = None

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `DeviceClient.scan` besides the event type."""
        return {
            "gtin": self.gtin,
            "serial": self.serial,
            "qty": self.qty,
            "ts": self.ts,
            "reason": self.reason,
            "stream": self.stream,
            "weight_g": self.weight_g,
            "attrs": self.attrs,
        }

    def at(self, ts: datetime) -> Scan:
        """The same scan at another instant (live mode stamps the wall clock)."""
        return replace(self, ts=ts)
