"""Simulated fleets of devices publishing realistic traffic through `DeviceClient`.

Entry points:
- `Scenario`, `load_scenario(path)`, `builtin_scenario("small" | "norway-year")`: what to
  simulate (scenario.py; files in devices/scenarios/).
- `world_seed(scenario)`: the scenario's packaging types, products, sites and devices as a
  `schemas.registry.SeedFile`, to register (`apply_seed`) before publishing.
- `run_history(scenario, mqtt_url, topic_root, ...)`: a simulated span (e.g. a year)
  ending now, published time-compressed; `run_live(scenario, mqtt_url, topic_root, stop,
  on_progress=None)`: wall-clock timestamps at a fixed rate until `stop` is set.
  Both return a `RunResult` with the ground truth (`result.summary()` is the JSON that
  `/v1/stats/return-rates?bucket=total`, `/v1/stats/reuse` and
  `/v1/stats/materials?bucket=total` must equal).
- `Simulation(scenario, start, end).scans()`: the scans alone, no broker (tests).

The world (world.py) and its behaviour (rvm.py, producers.py, reuse_loop.py, sorting.py)
run on a discrete-event engine (engine.py) and know nothing of MQTT; runner.py connects
them to the broker; ground_truth.py recomputes SPEC §7 from what was published."""

from devices.simulator.ground_truth import GroundTruth
from devices.simulator.runner import Progress, RunResult, run_history, run_live
from devices.simulator.scan import Scan
from devices.simulator.scenario import Scenario, builtin_scenario, load_scenario
from devices.simulator.simulation import Simulation
from devices.simulator.world import build_world, world_seed

__all__ = [
    "GroundTruth",
    "Progress",
    "RunResult",
    "Scan",
    "Scenario",
    "Simulation",
    "build_world",
    "builtin_scenario",
    "load_scenario",
    "run_history",
    "run_live",
    "world_seed",
]
