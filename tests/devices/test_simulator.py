"""The simulator without a broker: scenarios, determinism, opening hours, realism, the
runner's modes, and the ground truth on a small hand-made history (SPEC §7,
docs/materials.md)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from devices.simulator import (
    GroundTruth,
    Scan,
    Scenario,
    Simulation,
    build_world,
    builtin_scenario,
    load_scenario,
    run_history,
    run_live,
    world_seed,
)
from schemas.messages import Rejected, parse_event
from schemas.registry import PackagingType, Product, SeedFile

OSLO = ZoneInfo("Europe/Oslo")
END = datetime(2026, 6, 1, 12, tzinfo=UTC)  # a Monday; 17 May 2026 is a Sunday
MONTH = Scenario().with_overrides(
    top={"seed": 11},
    timing={"duration": "30d"},
    world={"shops": 6, "sorting_sites": 2},
    one_way={"units_per_shop_day": 40},
)


class ListSink:
    """Collects scans instead of publishing them."""

    def __init__(self) -> None:
        self.scans: list[Scan] = []

    def emit(self, scan: Scan) -> str:
        self.scans.append(scan)
        return str(uuid.uuid4())


def month_scans() -> list[Scan]:
    return list(Simulation(MONTH, END - timedelta(days=30), END).scans())


@pytest.fixture(scope="module")
def scans() -> list[Scan]:
    return month_scans()


# --- scenarios ---------------------------------------------------------------------


def test_durations_and_compression_are_read_as_people_write_them() -> None:
    timing = Scenario.model_validate(
        {"timing": {"duration": "1y", "warmup": "2w", "compress": "1y/5m", "rate": 50}}
    ).timing
    assert timing.duration == timedelta(days=365)
    assert timing.warmup == timedelta(days=14)
    assert timing.compress == 365 * 24 * 12  # a year in five minutes: 105,120 times faster
    assert Scenario.model_validate({"timing": {"compress": "max"}}).timing.compress is None
    assert Scenario.model_validate({"timing": {"compress": 3600}}).timing.compress == 3600
    with pytest.raises(ValueError, match="wall-clock time must be positive"):
        Scenario.model_validate({"timing": {"compress": "1y/0s"}})
    with pytest.raises(ValueError, match="shops"):
        Scenario.model_validate({"world": {"shops": 0}})


def test_the_shipped_scenarios_load(tmp_path: Path) -> None:
    year = builtin_scenario("norway-year")
    assert (year.world.shops, year.world.sorting_sites) == (20, 2)
    assert year.timing.duration == timedelta(days=365)
    assert year.timing.compress == pytest.approx(365 * 86_400 / 300)
    assert builtin_scenario("small").world.shops == 4
    # A scenario file of one's own, with only what differs from the defaults.
    own = tmp_path / "mine.yaml"
    own.write_text(yaml.safe_dump({"seed": 3, "world": {"shops": 2}}))
    assert load_scenario(own).world.shops == 2


def test_the_world_is_norwegian_and_registers_whole() -> None:
    seed = world_seed(builtin_scenario("norway-year"))
    types = {t.id: t for t in seed.packaging_types}
    assert {"pet-0.5l", "pet-1.5l", "can-0.33l", "glass-0.5l", "crate-24"} <= set(types)
    assert types["glass-0.5l"].reusable and types["glass-0.5l"].material == "glass"
    assert types["can-0.33l"].material == "aluminium"
    assert len({p.brand for p in seed.products}) >= 3
    kinds = Counter(site.kind.value for site in seed.sites)
    assert (kinds["shop"], kinds["sorting"]) == (20, 2)
    site_ids = {site.id for site in seed.sites}
    assert all(device.site in site_ids for device in seed.devices)
    assert {p.packaging_type for p in seed.products} <= set(types)
    # Content shares for /v1/stats/materials: recycled PET and aluminium, a fibre-based
    # bottle, and one product whose recycled share differs from its packaging type's.
    assert types["can-0.33l"].recycled_content_pct == 70
    assert 30 <= types["pet-0.5l"].recycled_content_pct <= 50
    fibre = [t for t in types.values() if t.fibre_based]
    assert fibre and all(t.renewable_content_pct > 0 for t in fibre)
    (override,) = [p for p in seed.products if p.recycled_content_pct is not None]
    assert (override.packaging_type, override.recycled_content_pct) == ("pet-0.5l", 50)
    # SeedFile validates every record (GTIN check digits, slugs, device ids).
    SeedFile.model_validate(seed.model_dump())


# --- determinism and realism ---------------------------------------------------------


def test_the_same_seed_gives_the_same_traffic(scans: list[Scan]) -> None:
    assert month_scans() == scans
    other = MONTH.with_overrides(top={"seed": 12})
    assert list(Simulation(other, END - timedelta(days=30), END).scans()) != scans


def test_scans_are_in_time_order_within_the_span(scans: list[Scan]) -> None:
    assert scans[0].ts >= END - timedelta(days=30)
    assert scans[-1].ts < END
    assert all(a.ts <= b.ts for a, b in pairwise(scans))


def _open(window: str | None, local: datetime) -> bool:
    if window is None:
        return False
    opening, closing = window.split("-")
    return opening <= local.strftime("%H:%M:%S") < closing + ":00"


def test_shops_work_only_in_their_opening_hours(scans: list[Scan]) -> None:
    """Every RVM and till scan falls on a shop day, between opening and closing in Oslo,
    never on a public holiday (17 May), and on a Sunday only at a Sunday-open shop."""
    world = build_world(MONTH)
    hours = MONTH.world.shop_hours
    shop_of = {device: shop for shop in world.shops for device in (*shop.rvms, shop.pos)}
    sunday_open = {
        shop.id for shop in world.shops if shop.hours.window_on(date(2026, 5, 24)) is not None
    }
    seen_days: set[date] = set()
    checked = 0
    for scan in scans:
        shop = shop_of.get(scan.device_id)
        if shop is None:
            continue
        local = scan.ts.astimezone(OSLO)
        assert local.strftime("%m-%d") not in MONTH.world.holidays, scan
        weekday = local.weekday()
        if weekday < 5:
            window = hours.weekdays
        elif weekday == 5:
            window = hours.saturday
        else:
            assert shop.id in sunday_open, scan
            window = MONTH.world.sunday_hours
        assert _open(window, local), (scan, window)
        seen_days.add(local.date())
        checked += 1
    assert checked > 1000
    assert date(2026, 5, 17) not in seen_days and date(2026, 5, 18) in seen_days


def test_rvms_refuse_a_few_percent_for_the_spec_reasons(scans: list[Scan]) -> None:
    rvm = [s for s in scans if s.device_id.startswith("rvm-")]
    rejected = [s for s in rvm if s.type == "rejected"]
    assert 0.03 <= len(rejected) / len(rvm) <= 0.08
    reasons = Counter(s.reason for s in rejected)
    assert set(reasons) == {"unreadable", "damaged", "not_empty", "unknown_product", "other"}
    assert reasons.most_common(1)[0][0] == "unreadable"
    assert all(s.attrs and {"weight_g", "fill_level_pct"} <= set(s.attrs) for s in rvm)
    # Containers refused as not empty weigh more than empty ones of the same product.
    weights: dict[tuple[str, str], list[float]] = {}
    for s in rvm:
        assert s.attrs is not None
        key = (s.gtin, "not_empty" if s.reason == "not_empty" else "empty")
        weights.setdefault(key, []).append(s.attrs["weight_g"])
    for (gtin, kind), values in weights.items():
        if kind == "not_empty" and (gtin, "empty") in weights:
            assert min(values) > max(weights[(gtin, "empty")]) - 5


def test_producers_declare_volumes_and_items_carry_serials(scans: list[Scan]) -> None:
    declared = [s for s in scans if s.device_id.startswith("declare-")]
    assert declared and all(s.type == "sold" and s.serial is None for s in declared)
    assert max(s.qty for s in declared) > 1
    serialised = [s for s in scans if s.serial is not None]
    assert serialised and all(s.qty == 1 for s in serialised)
    assert all(re.fullmatch(r'[!"%-?A-Z_a-z]{1,20}', s.serial or "") for s in serialised)
    streams = Counter(s.stream for s in scans if s.type == "sorted")
    assert {"reuse", "PET", "aluminium"} <= set(streams)
    types = Counter(s.type for s in serialised)
    assert {"filled", "sold", "returned", "sorted", "washed"} <= set(types)


def test_every_scan_passes_the_ingest_rules(scans: list[Scan]) -> None:
    """What the worker would dead-letter, nothing of the simulation may be."""
    now = END + timedelta(seconds=1)
    for seq, scan in enumerate(scans, 1):
        event: dict[str, Any] = {
            "event_id": str(uuid.uuid4()), "ts": scan.ts.isoformat(), "type": scan.type,
            "gtin": scan.gtin, "qty": scan.qty, "seq": seq,
        }  # fmt: skip
        for key in ("serial", "reason", "stream", "weight_g", "attrs"):
            if getattr(scan, key) is not None:
                event[key] = getattr(scan, key)
        checked = parse_event(event, scan.device_id, now)
        assert not isinstance(checked, Rejected), (scan, checked)


def test_sorting_sites_weigh_most_counts_and_send_a_few_to_energy_or_residual(
    scans: list[Scan],
) -> None:
    world = build_world(MONTH)
    product = {p.gtin: p for p in world.products}
    counted = [s for s in scans if s.type == "sorted" and s.serial is None]
    weighed = [s for s in counted if s.weight_g is not None]
    assert 0.75 <= len(weighed) / len(counted) <= 0.95
    for scan in weighed:  # whole grams within 3 % of the nominal weight of all qty
        nominal = scan.qty * product[scan.gtin].weight_g
        assert scan.weight_g is not None and scan.weight_g == int(scan.weight_g)
        assert abs(scan.weight_g - nominal) <= 0.03 * nominal + 0.5, scan
    qty = Counter[str]()
    for scan in counted:
        qty[scan.stream or ""] += scan.qty
    off_stream = qty["energy"] + qty["residual"]
    assert qty["energy"] > 0 and qty["residual"] > 0
    assert 0.01 <= off_stream / qty.total() <= 0.06
    # What burns goes to energy recovery, glass and metal to residual waste.
    for scan in counted:
        material = product[scan.gtin].packaging.material
        if scan.stream == "energy":
            assert material in ("PET", "HDPE", "PP", "fibre", "other"), scan
        elif scan.stream == "residual":
            assert material in ("glass", "aluminium", "steel"), scan
    # Reusable items sorted one by one are not weighed: their nominal weight counts.
    assert all(s.weight_g is None for s in scans if s.type == "sorted" and s.serial is not None)
    # A fibre-based bottle is sold and comes back, in small volume.
    fibre = {p.gtin for p in world.products if p.packaging.fibre_based}
    sold = Counter[bool]()
    for scan in scans:
        if scan.type == "sold" and scan.serial is None:
            sold[scan.gtin in fibre] += scan.qty
    assert 0 < sold[True] < 0.05 * sold.total()
    assert any(s.type == "returned" and s.gtin in fibre for s in scans)
    # So the ground truth has non-trivial figures for every target.
    truth = GroundTruth(world_seed(MONTH))
    for scan in scans:
        truth.add(scan)
    rows = {row["material"]: row for row in truth.materials(END - timedelta(days=30), END)}
    assert {"PET", "aluminium", "glass", "HDPE", "fibre"} <= set(rows)
    placed = sum(row["placed_kg"] for row in rows.values())
    assert 0 < sum(row["fibre_kg"] for row in rows.values()) / placed < 0.05
    pet = rows["PET"]
    assert pet["sorted_energy_recovery_kg"] > 0 and 0.6 < pet["material_recycling_rate"] < 1
    assert 0.3 < pet["recycled_content_share"] < 0.5  # 30-35 %, one product at 50 %
    assert rows["aluminium"]["sorted_residual_kg"] > 0
    assert rows["glass"]["reuse_share"] > 0.8


def test_reusable_items_follow_the_loop_and_some_labels_are_cloned() -> None:
    scenario = MONTH.with_overrides(
        top={"reuse": [{"packaging_type": "glass-0.5l", "pool": 150, "clone_share": 0.3}]},
        timing={"duration": "120d"},
        one_way={"units_per_shop_day": 0.5},
    )
    scans = list(Simulation(scenario, END - timedelta(days=120), END).scans())
    lives: dict[str, list[Scan]] = {}
    for scan in scans:
        if scan.serial is not None:
            lives.setdefault(scan.serial, []).append(scan)
    following = {
        "filled": {"sold"},
        "sold": {"returned"},
        "sorted": {"washed", "recycled", "retired"},
        "washed": {"filled"},
    }
    duplicates = 0
    for life in lives.values():
        kinds = [s.type for s in life]
        for before, after in pairwise(kinds):
            if before in following:  # a clone's return may come in anywhere
                assert after in following[before] | {"returned"}, kinds
        loop = [kind for kind in kinds if kind in ("sold", "filled", "returned")]
        duplicates += sum(a == b == "returned" for a, b in pairwise(loop))
    assert duplicates > 0
    truth = GroundTruth(world_seed(scenario))
    for scan in scans:
        truth.add(scan)
    assert truth.duplicate_returns() == duplicates


# --- the runner ----------------------------------------------------------------------


def test_history_runs_end_now_and_stop_at_the_event_limit() -> None:
    sink = ListSink()
    now = datetime.now(UTC)
    scenario = MONTH.with_overrides(timing={"duration": "3d", "events": 500})
    result = run_history(scenario, "mqtt://unused", "t", sink=sink, now=now)
    assert result.published == len(sink.scans) == 500 and result.stopped
    assert result.end == now and all(s.ts < now for s in sink.scans)
    assert result.truth.events == 500


def test_compression_stretches_the_span_over_wall_time() -> None:
    """A day compressed into half a second is published in no less than that."""
    scenario = MONTH.with_overrides(timing={"duration": "1d", "compress": "1d/0.5s"})
    began = time.monotonic()
    result = run_history(scenario, "mqtt://unused", "t", sink=ListSink())
    assert time.monotonic() - began >= 0.45
    assert result.published > 0 and not result.stopped


def test_live_mode_stamps_the_wall_clock_until_stopped() -> None:
    sink = ListSink()
    stop = threading.Event()
    progress: list[int] = []

    def on_progress(update: Any) -> None:
        progress.append(update.published)
        if update.published >= 30:
            stop.set()

    began = datetime.now(UTC)
    result = run_live(MONTH, "mqtt://unused", "t", stop, on_progress, rate=200, sink=sink)
    assert 30 <= result.published == len(sink.scans) < 200
    assert all(began <= s.ts <= datetime.now(UTC) for s in sink.scans)
    assert progress[-1] == result.published


# --- ground truth on a hand-made history ----------------------------------------------

PET = "7038010001239"
PET_SITRON = "7038010003455"
CRATE = "07038010009990"
FIBRE_CUP = "7038010009129"
POUCH = "7038010007019"
FOREIGN = "5701234000150"
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
# Only the cola overrides its packaging type's recycled share (50 % instead of 30 %); the
# pouch's packaging type has no weight.
REGISTRY = SeedFile(
    packaging_types=[
        PackagingType(id="pet-0.5l", name="PET", material="PET", weight_g=Decimal("22.5"),
                      recycled_content_pct=Decimal(30)),
        PackagingType(id="crate-24", name="Crate", material="HDPE", reusable=True,
                      target_trips=2, weight_g=Decimal(1600), recycled_content_pct=Decimal(25)),
        PackagingType(id="fibre-cup", name="Fibre cup", material="fibre",
                      weight_g=Decimal("12.5"), recycled_content_pct=Decimal(10),
                      renewable_content_pct=Decimal(80), fibre_based=True),
        PackagingType(id="pouch", name="Pouch", material="other"),
    ],
    products=[
        Product(gtin=PET, packaging_type="pet-0.5l", brand="fjordbrus", name="Cola",
                recycled_content_pct=Decimal(50)),
        Product(gtin=PET_SITRON, packaging_type="pet-0.5l", brand="fjordbrus", name="Sitron"),
        Product(gtin=CRATE, packaging_type="crate-24", brand="nordlys", name="Crate"),
        Product(gtin=FIBRE_CUP, packaging_type="fibre-cup", brand="koppen", name="Cup"),
        Product(gtin=POUCH, packaging_type="pouch", brand="kilde", name="Pouch"),
    ],
)  # fmt: skip


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def hand_made() -> GroundTruth:
    truth = GroundTruth(REGISTRY)
    history = [
        # One-way: 10 sold, 3 returned, 1 refused, one return after the window.
        Scan("d", at(0), "sold", PET, qty=10),
        Scan("d", at(1), "returned", PET),
        Scan("d", at(2), "returned", PET),
        Scan("d", at(2), "returned", PET),
        Scan("d", at(3), "rejected", PET, reason="damaged"),
        Scan("d", at(40), "returned", PET),
        Scan("d", at(4), "rejected", FOREIGN, reason="unknown_product"),
        # Crate A: trip of 4 days from its sale, a duplicate return, a trip of 2 days
        # from its filling (no sale): 2 trips, reached target 2.
        Scan("d", at(0), "filled", CRATE, serial="A"),
        Scan("d", at(1), "sold", CRATE, serial="A"),
        Scan("d", at(5), "returned", CRATE, serial="A"),
        Scan("d", at(6), "returned", CRATE, serial="A"),
        Scan("d", at(7), "washed", CRATE, serial="A"),
        Scan("d", at(8), "filled", CRATE, serial="A"),
        Scan("d", at(10), "returned", CRATE, serial="A"),
        # Crate B: sold and never back: lost 190 days later.
        Scan("d", at(0), "commissioned", CRATE, serial="B"),
        Scan("d", at(1), "filled", CRATE, serial="B"),
        Scan("d", at(2), "sold", CRATE, serial="B"),
        # Crate C: one trip of 7 days, then retired.
        Scan("d", at(0), "filled", CRATE, serial="C"),
        Scan("d", at(2), "sold", CRATE, serial="C"),
        Scan("d", at(9), "returned", CRATE, serial="C"),
        Scan("d", at(10), "sorted", CRATE, serial="C", stream="HDPE"),
        Scan("d", at(11), "retired", CRATE, serial="C"),
        # Crate D: commissioned only.
        Scan("d", at(0), "commissioned", CRATE, serial="D"),
    ]
    for scan in history:
        truth.add(scan)
    return truth


def test_return_rates_of_a_hand_made_history() -> None:
    start, end = at(-1), at(30)
    rows = {row["packaging_type"]: row for row in hand_made().return_rates(start, end)}
    assert list(rows) == ["crate-24", "pet-0.5l", None]
    assert rows["pet-0.5l"] == {
        "bucket_start": start.isoformat(), "packaging_type": "pet-0.5l",
        "sold": 10, "returned": 3, "rejected": 1, "return_rate": 0.3,
        # 10 x 22.5 g = 225 g and 3 x 22.5 g = 67.5 g
        "sold_kg": 0.225, "returned_kg": 0.068,
    }  # fmt: skip
    # Crates: sold by B, A (day 1) and C; returned 5 times, the duplicate included.
    assert rows["crate-24"]["sold"] == 3 and rows["crate-24"]["returned"] == 4
    assert rows["crate-24"]["return_rate"] == 4 / 3
    assert rows["crate-24"]["sold_kg"] == 4.8 and rows["crate-24"]["returned_kg"] == 6.4
    assert rows[None] == {
        "bucket_start": start.isoformat(), "packaging_type": None, "sold": 0, "returned": 0,
        "rejected": 1, "return_rate": None, "sold_kg": None, "returned_kg": None,
    }  # fmt: skip


def test_reuse_of_a_hand_made_history() -> None:
    truth = hand_made()
    (row,) = truth.reuse(as_of=at(192), loss_after_days=180)
    assert row == {
        "packaging_type": "crate-24",
        "items": 4,  # A, B, C, D
        "trips": 3,  # A 2 (its duplicate is no trip), C 1
        "mean_trips": 0.75,
        "p50_trips": 0,  # trips ordered 0, 0, 1, 2: the 2nd
        "p90_trips": 2,  # ceil(0.9 x 4) = 4th
        "max_trips": 2,
        "target_trips": 2,
        "reached_target": 1,  # A
        "mean_trip_days": pytest.approx(13 / 3),  # 4, 2 and 7 days
        "median_trip_days": 4.0,
        "lost": 1,  # B: sold on day 2, 190 days before as_of
        "loss_rate": 1 / 3,  # of A, B, C (D was never sold or filled)
        "histogram": [
            {"trips": 0, "items": 2},
            {"trips": 1, "items": 1},
            {"trips": 2, "items": 1},
        ],
    }
    assert truth.duplicate_returns() == 1
    # 175 days after B's sale, B is not lost yet.
    assert truth.reuse(as_of=at(177))[0]["lost"] == 0


def test_events_at_the_same_instant_are_ordered_by_event_id() -> None:
    """As in the database: (ts, event_id); here the `returned` sorts before the `sold`, so
    the item's latest event is the sale, and the return opened by nothing ends a trip."""
    truth = GroundTruth(REGISTRY)
    low, high = "00000000-0000-4000-8000-000000000001", "ffffffff-ffff-4fff-bfff-ffffffffffff"
    truth.add(Scan("d", at(1), "sold", CRATE, serial="X"), high)
    truth.add(Scan("d", at(1), "returned", CRATE, serial="X"), low)
    (row,) = truth.reuse(as_of=at(400))
    assert (row["trips"], row["lost"], row["mean_trip_days"]) == (1, 1, None)


def test_kilograms_round_half_away_from_zero() -> None:
    truth = GroundTruth(REGISTRY)
    truth.add(Scan("d", at(1), "sold", PET, qty=3))  # 67.5 g
    truth.add(Scan("d", at(1), "returned", PET, qty=1))  # 22.5 g
    (row,) = truth.return_rates(at(0), at(2))
    assert (row["sold_kg"], row["returned_kg"]) == (0.068, 0.023)


def test_material_flows_of_a_hand_made_history() -> None:
    """docs/materials.md by hand, on the history above plus sorting, a fibre cup, an
    unweighed pouch and an unregistered GTIN; the window is [day -1, day 30)."""
    truth = hand_made()
    for scan in [
        # PET: weighed and unweighed counts to the PET stream, one contaminated one burnt,
        # one to a stream nobody mapped; the Sitron sells at its type's 30 %.
        Scan("s", at(3), "sorted", PET, qty=3, stream="PET", weight_g=70.1),
        Scan("s", at(3), "sorted", PET, qty=2, stream="PET"),
        Scan("s", at(3), "sorted", PET, stream="energy", weight_g=23.4),
        Scan("s", at(4), "sorted", PET, stream="mixed-plastics"),
        Scan("d", at(5), "sold", PET_SITRON, qty=4),
        # Crate A back into the loop (crate C went to HDPE recycling in hand_made).
        Scan("s", at(7), "sorted", CRATE, serial="A", stream="reuse"),
        # Fibre cups.
        Scan("d", at(1), "sold", FIBRE_CUP, qty=20),
        Scan("d", at(6), "returned", FIBRE_CUP),
        Scan("s", at(7), "sorted", FIBRE_CUP, qty=5, stream="fibre", weight_g=70.0),
        Scan("s", at(7), "sorted", FIBRE_CUP, stream="residual"),
        # Pouches: no nominal weight, so only the measured sorted count has kg.
        Scan("d", at(1), "sold", POUCH, qty=7),
        Scan("d", at(2), "returned", POUCH),
        Scan("s", at(3), "sorted", POUCH, qty=2, stream="energy", weight_g=15.0),
        Scan("s", at(3), "sorted", POUCH, stream="energy"),
        # An unregistered GTIN: material None; its measured weight still counts.
        Scan("d", at(1), "sold", FOREIGN, qty=3),
        Scan("s", at(3), "sorted", FOREIGN, qty=2, stream="PET", weight_g=50.0),
        # Outside the window ([from, to): `to` excluded).
        Scan("s", at(30), "sorted", PET, qty=100, stream="PET", weight_g=2250.0),
        Scan("d", at(-2), "sold", PET, qty=100),
    ]:
        truth.add(scan)
    start, end = at(-1), at(30)
    rows = {row["material"]: row for row in truth.materials(start, end)}
    assert list(rows) == ["HDPE", "PET", "fibre", "other", None]
    zero = {"sorted_reuse_kg": 0.0, "sorted_recycling_kg": 0.0, "sorted_energy_recovery_kg": 0.0,
            "sorted_residual_kg": 0.0, "sorted_unmapped_kg": 0.0, "recycled_content_kg": 0.0,
            "renewable_content_kg": 0.0, "fibre_kg": 0.0}  # fmt: skip
    assert rows["PET"] == {
        "bucket_start": start.isoformat(), "material": "PET",
        # Cola 10 x 22.5 g = 225 g, Sitron 4 x 22.5 g = 90 g.
        "placed_kg": 0.315,
        # 3 x 22.5 g = 67.5 g, rounded half away from zero; the day-40 return is out.
        "collected_kg": 0.068,
        # 70.1 g measured + 2 x 22.5 g nominal + 23.4 g measured + 22.5 g nominal.
        "sorted_kg": 0.161,
        **zero,
        "sorted_recycling_kg": 0.115,  # 70.1 + 45 = 115.1 g
        "sorted_energy_recovery_kg": 0.023,  # 23.4 g
        "sorted_unmapped_kg": 0.023,  # 22.5 g
        "recycled_content_kg": 0.140,  # 225 g x 50 % + 90 g x 30 % = 139.5 g
        "unweighed_qty": 0,
        # Rates divide the exact grams, not the kg rounded to the gram.
        "collection_rate": pytest.approx(67.5 / 315, rel=1e-12),
        "material_recycling_rate": pytest.approx(115.1 / 315, rel=1e-12),
        "reuse_share": 0.0,
        "recycled_content_share": pytest.approx(139.5 / 315, rel=1e-12),
        "renewable_content_share": 0.0,
        "fibre_share": 0.0,
    }  # fmt: skip
    assert rows["HDPE"] == {
        "bucket_start": start.isoformat(), "material": "HDPE",
        "placed_kg": 4.8,  # crates A, B and C sold once each, 1600 g
        "collected_kg": 6.4,  # A three times (its duplicate return too), C once
        "sorted_kg": 3.2,
        **zero,
        "sorted_reuse_kg": 1.6,  # A
        "sorted_recycling_kg": 1.6,  # C, stream HDPE
        "recycled_content_kg": 1.2,  # 25 % of 4.8 kg
        "unweighed_qty": 0,
        "collection_rate": pytest.approx(4 / 3, rel=1e-12),
        "material_recycling_rate": pytest.approx(1 / 3, rel=1e-12),
        "reuse_share": 0.5,
        "recycled_content_share": 0.25,
        "renewable_content_share": 0.0,
        "fibre_share": 0.0,
    }  # fmt: skip
    assert rows["fibre"] == {
        "bucket_start": start.isoformat(), "material": "fibre",
        "placed_kg": 0.25,  # 20 x 12.5 g
        "collected_kg": 0.013,  # 12.5 g
        "sorted_kg": 0.083,  # 70 g measured + 12.5 g nominal = 82.5 g
        **zero,
        "sorted_recycling_kg": 0.07,
        "sorted_residual_kg": 0.013,
        "recycled_content_kg": 0.025,  # 10 % of 250 g
        "renewable_content_kg": 0.2,  # 80 % of 250 g
        "fibre_kg": 0.25,
        "unweighed_qty": 0,
        "collection_rate": pytest.approx(0.05, rel=1e-12),  # 12.5 g of 250 g
        "material_recycling_rate": pytest.approx(0.28, rel=1e-12),
        "reuse_share": 0.0,
        "recycled_content_share": pytest.approx(0.1, rel=1e-12),
        "renewable_content_share": pytest.approx(0.8, rel=1e-12),
        "fibre_share": 1.0,
    }  # fmt: skip
    assert rows["other"] == {
        "bucket_start": start.isoformat(), "material": "other",
        "placed_kg": 0.0, "collected_kg": 0.0, "sorted_kg": 0.015, **zero,
        "sorted_energy_recovery_kg": 0.015,  # the measured 15 g
        "unweighed_qty": 9,  # 7 sold, 1 returned, 1 sorted without a measured weight
        "collection_rate": None, "material_recycling_rate": None, "reuse_share": 0.0,
        "recycled_content_share": None, "renewable_content_share": None, "fibre_share": None,
    }  # fmt: skip
    assert rows[None] == {
        "bucket_start": start.isoformat(), "material": None,
        "placed_kg": 0.0, "collected_kg": 0.0, "sorted_kg": 0.05, **zero,
        "sorted_recycling_kg": 0.05,  # the stream decides the outcome, not the material
        "unweighed_qty": 3,  # the 3 sold; its refusal is no flow
        "collection_rate": None, "material_recycling_rate": None, "reuse_share": 0.0,
        "recycled_content_share": None, "renewable_content_share": None, "fibre_share": None,
    }  # fmt: skip
    # The ground-truth file carries the same rows.
    summary = truth.summary((start, end), at(30))
    assert summary["materials"]["rows"] == truth.materials(start, end)
    assert summary["materials"]["query"]["bucket"] == "total"


def test_the_stream_mapping_decides_the_outcome() -> None:
    """Stream outcomes are registry data: mapped otherwise, the same events count
    elsewhere (docs/materials.md)."""
    history = [
        Scan("s", at(1), "sorted", PET, stream="mixed-plastics"),
        Scan("s", at(1), "sorted", PET, stream="PET"),
    ]
    outcomes = {"PET": "energy_recovery", "mixed-plastics": "material_recycling"}
    truth = GroundTruth(REGISTRY, stream_outcomes=outcomes)
    for scan in history:
        truth.add(scan)
    (row,) = truth.materials(at(0), at(2))
    assert (row["sorted_recycling_kg"], row["sorted_energy_recovery_kg"]) == (0.023, 0.023)
    assert row["sorted_unmapped_kg"] == 0.0 and row["material_recycling_rate"] is None
