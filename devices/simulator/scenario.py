"""The scenario of a simulation (what `looptrack simulate --scenario FILE` reads, and what
its flags override): world size, traffic volumes, realism parameters and timing."""

from __future__ import annotations

import re
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from schemas.events import RejectReason

# Units of a duration such as "365d" or "5m"; a year is 365 days.
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400, "y": 365 * 86_400}
_duration_match = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdwy])\s*").fullmatch
# The compression that means "publish as fast as possible".
AS_FAST_AS_POSSIBLE = "max"
# Where the shipped scenario files live (package data of `devices`).
SCENARIO_DIR = "scenarios"


def parse_duration(value: Any) -> Any:
    """ "365d", "5m", "1.5h", "2w", "1y" or a number of seconds → timedelta; anything else is
    left to pydantic (timedelta, ISO 8601 "P365D")."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str) and (match := _duration_match(value)):
        return timedelta(seconds=float(match[1]) * DURATION_UNITS[match[2]])
    return value


def parse_compression(value: Any) -> Any:
    """Simulated time per wall-clock time: "1y/5m" (a year in five minutes), a factor
    (3600 = an hour per second) or "max" (as fast as possible → None)."""
    if value is None or (isinstance(value, str) and value.strip() == AS_FAST_AS_POSSIBLE):
        return None
    if isinstance(value, str) and "/" in value:
        simulated, wall = (parse_duration(part) for part in value.split("/", 1))
        if not isinstance(simulated, timedelta) or not isinstance(wall, timedelta):
            raise ValueError(f"compression {value!r}: expected e.g. '1y/5m'")
        if wall <= timedelta(0):
            raise ValueError(f"compression {value!r}: the wall-clock time must be positive")
        return simulated / wall
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Compression = Annotated[Annotated[float, Field(gt=0)] | None, BeforeValidator(parse_compression)]
Share = Annotated[float, Field(ge=0, le=1)]
# "07:00-23:00": opening and closing time of one day, local; None = closed.
HoursOfDay = Annotated[str, Field(pattern=r"^[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timing(_Section):
    """Which stretch of time the timestamps cover and how fast it is published."""

    duration: Duration = Field(
        default=timedelta(days=7),
        description="simulated span of the timestamps, ending at `end` (live mode: wall time)",
    )
    end: AwareDatetime | None = Field(
        default=None, description="last instant simulated; default: now when the run starts"
    )
    warmup: Duration = Field(
        default=timedelta(days=30),
        description="simulated before `end - duration` but not published, so that returns "
        "of earlier sales are already flowing when publishing starts",
    )
    compress: Compression = Field(
        default=None, description="simulated time per wall-clock time; None = as fast as possible"
    )
    rate: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="most events published per second (live mode: the rate)"
    )
    events: Annotated[int, Field(gt=0)] | None = Field(
        default=None, description="stop after this many events"
    )


class Hours(_Section):
    """Opening hours per kind of day, local time (Europe/Oslo); None = closed."""

    weekdays: HoursOfDay | None = "07:00-23:00"
    saturday: HoursOfDay | None = "08:00-21:00"
    sunday: HoursOfDay | None = None


class WorldParams(_Section):
    """How many sites and devices, and when they work."""

    shops: Annotated[int, Field(ge=1, le=500)] = 4
    sorting_sites: Annotated[int, Field(ge=1, le=20)] = 1
    rvms_per_shop: tuple[Annotated[int, Field(ge=1, le=20)], Annotated[int, Field(ge=1, le=20)]] = (
        1,
        3,
    )
    timezone: str = "Europe/Oslo"
    shop_hours: Hours = Hours()
    # Norwegian grocery shops are closed on Sundays, except small ones ("søndagsåpne").
    sunday_open_share: Share = 0.15
    sunday_hours: HoursOfDay = "10:00-20:00"
    # Public holidays every shop and plant is closed ("MM-DD"; movable feasts left out).
    holidays: list[Annotated[str, Field(pattern=r"^[01][0-9]-[0-3][0-9]$")]] = [
        "01-01",
        "05-01",
        "05-17",
        "12-25",
        "12-26",
    ]
    sorting_hours: Hours = Hours(weekdays="06:00-22:00", saturday=None)
    plant_hours: Hours = Hours(weekdays="06:00-22:00", saturday=None)


class OneWayParams(_Section):
    """Deposit bottles and cans: producers declare sales, consumers bring them back."""

    units_per_shop_day: Annotated[float, Field(ge=0)] = 10.0
    return_probability: Share = 0.9
    # Days from purchase to return: lognormal with this median and sigma.
    return_lag_days_median: Annotated[float, Field(gt=0)] = 5.0
    return_lag_sigma: Annotated[float, Field(ge=0, le=3)] = 0.9
    # Producers declare the units sold in each period, shortly after it ends.
    declare_every: Duration = timedelta(days=1)
    # Amplitude of the summer peak (0 = flat year).
    seasonality: Annotated[float, Field(ge=0, lt=1)] = 0.3


def _default_reasons() -> dict[RejectReason, float]:
    # Shares of refusals as RVM operators report them: mostly unreadable or crushed labels.
    return {
        RejectReason.UNREADABLE: 45,
        RejectReason.DAMAGED: 25,
        RejectReason.NOT_EMPTY: 15,
        RejectReason.OTHER: 5,
    }


def _default_retry() -> dict[RejectReason, float]:
    # Chance the customer flattens, empties or re-inserts a refused container successfully.
    return {
        RejectReason.UNREADABLE: 0.6,
        RejectReason.NOT_EMPTY: 0.5,
        RejectReason.DAMAGED: 0.0,
        RejectReason.OTHER: 0.3,
    }


class RvmParams(_Section):
    """Reverse-vending machines: what they refuse and why."""

    reject_probability: Share = 0.04
    reasons: dict[RejectReason, Annotated[float, Field(ge=0)]] = Field(
        default_factory=_default_reasons
    )
    retry_success: dict[RejectReason, Share] = Field(default_factory=_default_retry)
    # Foreign or unregistered containers inserted, per container returned: refused as
    # unknown_product.
    foreign_share: Share = 0.01
    bin_capacity: Annotated[int, Field(ge=1)] = 600
    weight_noise_g: Annotated[float, Field(ge=0)] = 1.5


class ReuseLoopParams(_Section):
    """A pool of serialised reusable items cycling filled → sold → returned → sorted →
    washed → filled."""

    packaging_type: str
    pool: Annotated[int, Field(ge=0)] = 100
    # The pool is commissioned over this span from the start of the simulation (warmup).
    commission_over: Duration = timedelta(days=21)
    new_items_per_week: Annotated[float, Field(ge=0)] = 0.0
    # Per trip: never comes back; broken when sorted (recycled or retired).
    loss_probability: Share = 0.03
    breakage_probability: Share = 0.02
    # Items retire (sorted to material) once they reach their packaging type's target_trips.
    retire_at_target: bool = True
    # Share of items whose label was cloned; each return of one is followed by a duplicate
    # return of the clone with this probability.
    clone_share: Share = 0.03
    clone_duplicate_probability: Share = 0.6
    # Days a consumer keeps the item: lognormal.
    trip_days_median: Annotated[float, Field(gt=0)] = 12.0
    trip_days_sigma: Annotated[float, Field(ge=0, le=3)] = 0.7
    # Days from filling to the shop shelf, and from sorting to washing to filling.
    delivery_days: tuple[float, float] = (1.0, 4.0)
    turnaround_days: tuple[float, float] = (1.0, 3.0)
    # Chance the item is returned at the shop where it was bought.
    same_shop_return: Share = 0.7


def _default_loops() -> list[ReuseLoopParams]:
    return [
        ReuseLoopParams(packaging_type="glass-0.5l", pool=120),
        ReuseLoopParams(
            packaging_type="crate-24", pool=60, trip_days_median=16.0, breakage_probability=0.01
        ),
    ]


class SortingParams(_Section):
    """Collection from shops and sorting at the sorting sites."""

    pickup_every_days: Annotated[int, Field(ge=1, le=14)] = 2
    # Seconds between two reusable items on the sorting line.
    item_interval_s: Annotated[float, Field(gt=0)] = 20.0
    # One-way containers that go to energy recovery (plastics, fibre) or residual waste
    # (glass, metal) instead of material recycling: contaminated or mis-sorted.
    off_stream_share: Share = 0.03
    # Share of one-way counts weighed on the line's scale (the rest: scale down or
    # bypassed; their nominal weight counts), and the scale's relative spread around
    # qty times the nominal weight (residue, moisture, caps).
    weighed_share: Share = 0.85
    weight_spread: Annotated[float, Field(ge=0, lt=1)] = 0.03


class Scenario(_Section):
    """Everything a simulation run needs besides the broker; a YAML file has the same
    shape (every section optional)."""

    name: str = "custom"
    seed: int = 1
    # Multiplies every volume (units sold, reusable pools): 0.1 for a quick run.
    scale: Annotated[float, Field(gt=0, le=1000)] = 1.0
    timing: Timing = Timing()
    world: WorldParams = WorldParams()
    one_way: OneWayParams = OneWayParams()
    rvm: RvmParams = RvmParams()
    reuse: list[ReuseLoopParams] = Field(default_factory=_default_loops)
    sorting: SortingParams = SortingParams()

    def with_overrides(self, **sections: dict[str, Any]) -> Scenario:
        """A copy with fields replaced, e.g. `with_overrides(world={"shops": 20})`;
        top-level fields (`seed`, `scale`, `name`) are given as `top={...}`."""
        data = self.model_dump(mode="python")
        for section, fields in sections.items():
            if section == "top":
                data.update(fields)
            else:
                data[section] = {**data[section], **fields}
        return Scenario.model_validate(data)


def load_scenario(path: Path) -> Scenario:
    """A scenario from a YAML (or JSON) file; ValueError (pydantic's ValidationError) or
    yaml.YAMLError naming the problem."""
    data = yaml.safe_load(path.read_text("utf-8"))
    return Scenario.model_validate(data or {})


def builtin_scenario(name: str) -> Scenario:
    """One of the scenario files shipped in `devices/scenarios/` ("small", "norway-year")."""
    text = (resources.files("devices") / SCENARIO_DIR / f"{name}.yaml").read_text("utf-8")
    return Scenario.model_validate(yaml.safe_load(text) or {})
