"""Drives a simulation onto the broker through one `DeviceClient` per simulated device.

- `run_history(scenario, mqtt_url, topic_root)`: the scenario's `timing.duration` ending
  now (or at `timing.end`), published compressed (`timing.compress`: a year in five
  minutes, or as fast as possible); timestamps are simulated time, never in the future.
- `run_live(scenario, mqtt_url, topic_root, stop)`: timestamps = wall clock now, at a
  fixed rate (events/s), until `stop` is set (what `looptrack demo` runs).

Both return a `RunResult` whose `truth` (ground_truth.GroundTruth) holds every event
published, to compare with `/v1/stats`. `sink=` replaces the broker (tests)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from devices.client import DeviceClient
from devices.simulator.ground_truth import GroundTruth, day_window
from devices.simulator.scan import Scan
from devices.simulator.scenario import Scenario
from devices.simulator.simulation import Simulation
from devices.simulator.world import build_world
from schemas.registry import SeedFile
from schemas.settings import MqttEndpoint, parse_mqtt_url

# Events per MQTT message at most, and how long a partial batch waits (s).
BATCH_SIZE = 200
BATCH_INTERVAL_S = 0.2
# How long the first connection to the broker may take before the run gives up (s).
CONNECT_TIMEOUT_S = 10.0
# How long the broker may take to acknowledge everything at the end of a run (s).
FLUSH_TIMEOUT_S = 120.0
# Live mode rate when neither the caller nor the scenario sets one (events/s).
DEFAULT_LIVE_RATE = 20.0
# Progress is reported at most this often (s).
PROGRESS_EVERY_S = 0.2
# A run never sleeps longer than this at once, so `stop` is honoured promptly (s).
MAX_SLEEP_S = 0.2


class BrokerUnreachable(ConnectionError):
    """No connection to the broker within CONNECT_TIMEOUT_S."""


class ScanSink(Protocol):
    """Where scans go; returns the event_id given to the event."""

    def emit(self, scan: Scan) -> str: ...


class ClientSink:
    """One DeviceClient (in-memory queue) per device, all started together."""

    def __init__(
        self,
        device_ids: Iterable[str],
        broker: str | MqttEndpoint,
        topic_root: str,
        *,
        batch_size: int = BATCH_SIZE,
        batch_interval_s: float = BATCH_INTERVAL_S,
    ) -> None:
        self._endpoint = parse_mqtt_url(broker) if isinstance(broker, str) else broker
        self._clients = {
            # Without receipts: the simulated fleet's queue is in memory, gone when the
            # process ends, so holding events until the ingest's receipt would promise
            # nothing more; and the simulator may run before any worker is up.
            device: DeviceClient(
                device, broker, topic_root=topic_root, queue_path=None,
                batch_size=batch_size, batch_interval_s=batch_interval_s, receipts=False,
            )
            for device in device_ids
        }  # fmt: skip

    def start(self, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Connect every client; BrokerUnreachable when the broker does not answer."""
        # A refused TCP connection fails at once, rather than after every client's retries.
        try:
            socket.create_connection(
                (self._endpoint.host, self._endpoint.port), timeout=connect_timeout_s
            ).close()
        except OSError as exc:
            raise BrokerUnreachable(f"{self._endpoint.host}:{self._endpoint.port}: {exc}") from exc
        for client in self._clients.values():
            client.start()
        deadline = time.monotonic() + connect_timeout_s
        for client in self._clients.values():
            if not client.wait_connected(max(deadline - time.monotonic(), 0.01)):
                self.close(timeout_s=0)
                raise BrokerUnreachable(f"no connection to the broker in {connect_timeout_s:g} s")

    def emit(self, scan: Scan) -> str:
        return self._clients[scan.device_id].scan(scan.type, **scan.client_kwargs())

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Wait until the broker has acknowledged every event; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout_s
        for client in self._clients.values():
            client.flush(max(deadline - time.monotonic(), 0.01))

    def close(self, timeout_s: float = 10.0) -> None:
        for client in self._clients.values():
            client.close(timeout_s)


@dataclass(frozen=True)
class Progress:
    published: int
    elapsed_s: float
    simulated_until: datetime | None  # history mode: the latest ts published
    fraction: float | None  # history mode: share of the simulated span done


@dataclass
class RunResult:
    """What was published: the simulated span, the count, and the ground truth."""

    scenario: Scenario
    registry: SeedFile
    start: datetime
    end: datetime
    published: int
    elapsed_s: float
    stopped: bool  # ended by `stop` or the event limit before the end of the span
    truth: GroundTruth
    live: bool = False

    def summary(self, as_of: datetime | None = None, tz: str = "UTC") -> dict[str, Any]:
        """The ground-truth JSON: the run, then the rows `/v1/stats` must answer."""
        zone = ZoneInfo(tz)
        first = self.truth.first or self.start
        last = self.truth.last or self.end
        # With its end fixed, the scenario reproduces this very run (history mode).
        scenario = (
            self.scenario if self.live else self.scenario.with_overrides(timing={"end": self.end})
        )
        return {
            "scenario": scenario.model_dump(mode="json"),
            "run": {
                "mode": "live" if self.live else "history",
                "simulated_from": self.start.isoformat(),
                "simulated_to": self.end.isoformat(),
                "published": self.published,
                "elapsed_s": round(self.elapsed_s, 3),
                "stopped_early": self.stopped,
            },
            **self.truth.summary(day_window(first, last, zone), as_of or datetime.now(UTC), tz=tz),
        }


ProgressCallback = Callable[[Progress], None]


def history_bounds(scenario: Scenario, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) of the simulated span: `timing.duration` ending at `timing.end`
    (default `now`); never in the future."""
    now = now or datetime.now(UTC)
    end = min(scenario.timing.end or now, now)
    return end - scenario.timing.duration, end


def _sleep_until(deadline: float, stop: threading.Event | None) -> None:
    while (left := deadline - time.monotonic()) > 0.001:
        if stop is not None and stop.is_set():
            return
        time.sleep(min(left, MAX_SLEEP_S))


@contextlib.contextmanager
def _publishing(
    scenario: Scenario, mqtt_url: str | MqttEndpoint, topic_root: str, sink: ScanSink | None
) -> Iterator[ScanSink]:
    """`sink` as given, else one DeviceClient per device of the scenario's world: waited
    for until the broker has acknowledged everything on a normal exit, closed on any."""
    if sink is not None:
        yield sink
        return
    clients = ClientSink(build_world(scenario).device_ids(), mqtt_url, topic_root)
    clients.start()
    try:
        yield clients
        clients.flush()
    finally:
        clients.close()


def run_history(
    scenario: Scenario,
    mqtt_url: str | MqttEndpoint,
    topic_root: str,
    *,
    stop: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
    now: datetime | None = None,
    sink: ScanSink | None = None,
) -> RunResult:
    """Publish the scenario's span, time-compressed; returns once the broker has
    acknowledged everything (BrokerUnreachable, TimeoutError)."""
    timing = scenario.timing
    start, end = history_bounds(scenario, now)
    simulation = Simulation(scenario, start, end)
    registry = simulation.world.seed_file()
    truth = GroundTruth(registry)
    span_s = max((end - start).total_seconds(), 1e-6)
    began = last_report = time.monotonic()
    published, stopped, latest = 0, False, None
    with _publishing(scenario, mqtt_url, topic_root, sink) as target:
        for scan in simulation.scans():
            if (stop is not None and stop.is_set()) or (
                timing.events is not None and published >= timing.events
            ):
                stopped = True
                break
            due = began
            if timing.compress is not None:
                due += (scan.ts - start).total_seconds() / timing.compress
            if timing.rate is not None:
                due = max(due, began + published / timing.rate)
            if due > time.monotonic():
                _sleep_until(due, stop)
            truth.add(scan, target.emit(scan))
            published += 1
            latest = scan.ts
            if on_progress is not None and time.monotonic() - last_report >= PROGRESS_EVERY_S:
                last_report = time.monotonic()
                fraction = (latest - start).total_seconds() / span_s
                on_progress(Progress(published, last_report - began, latest, fraction))
    if not stopped and timing.compress is not None:
        # The span ends at `end`, not at its last scan (hours before, when `end` falls in
        # a night without scans): its compressed length is the run's.
        _sleep_until(began + span_s / timing.compress, stop)
    elapsed = time.monotonic() - began
    if on_progress is not None:
        on_progress(Progress(published, elapsed, latest, 1.0 if not stopped else None))
    return RunResult(scenario, registry, start, end, published, elapsed, stopped, truth)


def run_live(
    scenario: Scenario,
    mqtt_url: str | MqttEndpoint,
    topic_root: str,
    stop: threading.Event,
    on_progress: ProgressCallback | None = None,
    *,
    rate: float | None = None,
    sink: ScanSink | None = None,
    backfill: timedelta | None = None,
) -> RunResult:
    """Publish the scenario's traffic stamped with the wall clock, `rate` events/s
    (default: `timing.rate`, else DEFAULT_LIVE_RATE), until `stop` is set, `timing.events`
    are out or `timing.duration` has passed (an explicit `timing.end` is ignored).

    `backfill`: first publish that much simulated past, ending now, at its own timestamps
    and as fast as possible; the live traffic then carries on from the same world, so
    trips begun in the past end in the live part."""
    per_s = rate or scenario.timing.rate or DEFAULT_LIVE_RATE
    started_at = datetime.now(UTC)
    simulation = Simulation(scenario, started_at - (backfill or timedelta(0)), None)
    registry = simulation.world.seed_file()
    truth = GroundTruth(registry)
    limit = scenario.timing.events
    wall_span_s = scenario.timing.duration.total_seconds()
    began = last_report = time.monotonic()
    published = backfilled = 0
    with _publishing(scenario, mqtt_url, topic_root, sink) as target:
        for scan in simulation.scans():
            if scan.ts <= started_at:  # the backfilled past: as it happened, at once
                truth.add(scan, target.emit(scan))
                published += 1
                backfilled += 1
                continue
            if published == backfilled:
                # The live part's pace starts with its first scan, once the past is out and
                # the world is built: not before, or the first second goes out as a burst.
                began = time.monotonic()
            due = began + (published - backfilled) / per_s
            if due - began >= wall_span_s or (limit is not None and published >= limit):
                break
            _sleep_until(due, stop)
            if stop.is_set():
                break
            stamped = scan.at(datetime.now(UTC))
            truth.add(stamped, target.emit(stamped))
            published += 1
            if on_progress is not None and time.monotonic() - last_report >= PROGRESS_EVERY_S:
                last_report = time.monotonic()
                on_progress(Progress(published, last_report - began, None, None))
    elapsed = time.monotonic() - began
    if on_progress is not None:
        on_progress(Progress(published, elapsed, None, None))
    ended_at = datetime.now(UTC)
    return RunResult(
        scenario, registry, started_at, ended_at, published, elapsed, True, truth, live=True
    )
