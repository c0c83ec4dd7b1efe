"""The simulated world of a scenario: Norwegian-style packaging types, brands and products,
shops with opening hours, sorting sites, a brewery's filling and washing plant, and every
device; `world_seed(scenario)` gives it as a registry (`schemas.registry.SeedFile`) to
register before publishing (events of unknown devices are dead-lettered)."""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from devices.simulator.clock import OpeningHours
from devices.simulator.scenario import Scenario
from schemas.gtin import gtin_check_digit
from schemas.registry import Device, DeviceKind, PackagingType, Product, SeedFile, Site, SiteKind


def _gtin(body: str) -> str:
    return body + gtin_check_digit(body)


# Content shares plausible for Norway's scheme: PET bottles carry 30-35 % recycled PET,
# cans mostly recycled aluminium, refillable glass some cullet, crates are moulded from
# ground-up old crates, and a fibre bottle (paper shell, thin bio-based lining) is sold
# on trial in small volume.
PACKAGING_TYPES = {
    t.id: t
    for t in (
        PackagingType(id="pet-0.5l", name="PET bottle 0.5 l", material="PET", deposit=200,
                      weight_g=Decimal(22), recycled_content_pct=Decimal(35)),
        PackagingType(id="pet-1.5l", name="PET bottle 1.5 l", material="PET", deposit=300,
                      weight_g=Decimal(38), recycled_content_pct=Decimal(30)),
        PackagingType(id="can-0.33l", name="Aluminium can 0.33 l", material="aluminium",
                      deposit=200, weight_g=Decimal(13), recycled_content_pct=Decimal(70)),
        PackagingType(id="fibre-0.5l", name="Fibre bottle 0.5 l", material="fibre", deposit=200,
                      weight_g=Decimal(30), recycled_content_pct=Decimal(10),
                      renewable_content_pct=Decimal(85), fibre_based=True),
        PackagingType(id="glass-0.5l", name="Refillable glass bottle 0.5 l", material="glass",
                      reusable=True, target_trips=25, deposit=250, weight_g=Decimal(370),
                      recycled_content_pct=Decimal(40)),
        PackagingType(id="crate-24", name="Beer crate 24 × 0.33 l", material="HDPE",  # noqa: RUF001
                      reusable=True, target_trips=60, deposit=1000, weight_g=Decimal(1600),
                      recycled_content_pct=Decimal(25)),
        PackagingType(id="cup-0.4l", name="Reusable cup 0.4 l", material="PP", reusable=True,
                      target_trips=200, deposit=500, weight_g=Decimal(45)),
    )
}  # fmt: skip

# (GTIN, packaging type, brand, name, share of one-way sales); the first five as in
# looptrack/data/seed.yaml. Reusable products have no share: their pools are set per loop.
CATALOGUE: list[tuple[str, str, str, str, float]] = [
    (_gtin("703801000123"), "pet-0.5l", "fjordbrus", "Fjordbrus Cola 0.5 l", 0.22),
    (_gtin("703801000234"), "pet-1.5l", "fjordbrus", "Fjordbrus Cola 1.5 l", 0.14),
    (_gtin("731086500470"), "can-0.33l", "nordlys", "Nordlys Pils 0.33 l", 0.24),
    (_gtin("0703801000999"), "crate-24", "nordlys", "Nordlys crate", 0.0),
    (_gtin("703801000555"), "cup-0.4l", "koppen", "Koppen cup", 0.0),
    (_gtin("703801000345"), "pet-0.5l", "fjordbrus", "Fjordbrus Sitron 0.5 l", 0.08),
    (_gtin("703801000456"), "can-0.33l", "fjordbrus", "Fjordbrus Cola 0.33 l", 0.10),
    (_gtin("703801000678"), "pet-0.5l", "kilde", "Kilde vann 0.5 l", 0.14),
    (_gtin("703801000789"), "pet-1.5l", "kilde", "Kilde vann 1.5 l", 0.08),
    (_gtin("703801000890"), "glass-0.5l", "nordlys", "Nordlys Pils 0.5 l returflaske", 0.0),
    (_gtin("703801000912"), "fibre-0.5l", "kilde", "Kilde vann 0.5 l fiberflaske", 0.015),
]
# Products whose recycled share differs from their packaging type's (%): Fjordbrus moved
# its 0.5 l cola to 50 % recycled PET before the others (as in looptrack/data/seed.yaml).
RECYCLED_CONTENT_OVERRIDES = {_gtin("703801000123"): Decimal(50)}
# Containers from abroad that RVMs refuse as unknown_product (never registered).
FOREIGN_GTINS = [_gtin("570123400015"), _gtin("400638133393"), _gtin("731869000127")]
# Material stream a sorting site puts each material in.
STREAMS = {"PET": "PET", "aluminium": "aluminium", "glass": "glass", "HDPE": "HDPE",
           "PP": "PP", "steel": "steel", "fibre": "fibre", "other": "residual"}  # fmt: skip
# Streams for what cannot go to material recycling (contaminated, mis-sorted): what burns
# goes to energy recovery, glass and metal to residual waste.
ENERGY_STREAM = "energy"
RESIDUAL_STREAM = "residual"
OFF_STREAMS = {"PET": ENERGY_STREAM, "HDPE": ENERGY_STREAM, "PP": ENERGY_STREAM,
               "fibre": ENERGY_STREAM, "other": ENERGY_STREAM, "glass": RESIDUAL_STREAM,
               "aluminium": RESIDUAL_STREAM, "steel": RESIDUAL_STREAM}  # fmt: skip

# (town, latitude, longitude) of the shops, in order; more shops cycle through them.
TOWNS = [
    ("Oslo Grünerløkka", 59.9226, 10.7590), ("Bergen sentrum", 60.3913, 5.3221),
    ("Trondheim Solsiden", 63.4346, 10.4125), ("Stavanger", 58.9700, 5.7331),
    ("Oslo Majorstuen", 59.9296, 10.7147), ("Drammen", 59.7439, 10.2045),
    ("Kristiansand", 58.1467, 7.9956), ("Tromsø", 69.6492, 18.9553),
    ("Fredrikstad", 59.2181, 10.9298), ("Sandnes", 58.8517, 5.7361),
    ("Ålesund", 62.4722, 6.1495), ("Bodø", 67.2804, 14.4049), ("Hamar", 60.7945, 11.0680),
    ("Lillehammer", 61.1153, 10.4662), ("Tønsberg", 59.2675, 10.4076),
    ("Moss", 59.4340, 10.6577), ("Haugesund", 59.4138, 5.2680), ("Arendal", 58.4617, 8.7722),
    ("Molde", 62.7375, 7.1591), ("Gjøvik", 60.7957, 10.6916), ("Oslo Grønland", 59.9127, 10.7600),
    ("Bergen Fyllingsdalen", 60.3486, 5.2920), ("Skien", 59.2096, 9.6090),
    ("Larvik", 59.0533, 10.0352),
]  # fmt: skip
CHAINS = ["Kiwi", "Rema 1000", "Coop Extra", "Meny", "Joker", "Coop Prix", "Spar", "Bunnpris"]
# (id, name, latitude, longitude) of sorting sites, in order; more get numbered.
SORTING_SITES = [
    ("sorting-berger", "Sorting site Berger", 59.9170, 11.0800),
    ("sorting-lorenskog", "Sorting site Lørenskog", 59.9270, 10.9640),
    ("sorting-bergen", "Sorting site Bergen", 60.3450, 5.3370),
    ("sorting-trondheim", "Sorting site Trondheim", 63.4180, 10.4300),
]
# Spread of shop sizes (lognormal sigma): a big hypermarket takes several times the
# returns of a small Joker.
SHOP_SIZE_SIGMA = 0.5


@dataclass(frozen=True)
class ProductInfo:
    """A product as the simulator uses it."""

    gtin: str  # as printed on the package (GTIN-13, or 14 digits for the crate)
    packaging: PackagingType
    brand: str
    name: str
    share: float  # of one-way sales
    stream: str  # material stream at sorting
    off_stream: str  # where a contaminated or mis-sorted one ends up instead
    recycled_content_pct: Decimal | None = None  # the product's own; None: its type's

    @property
    def weight_g(self) -> float:
        return float(self.packaging.weight_g or 0)


@dataclass(frozen=True)
class Shop:
    id: str
    name: str
    rvms: tuple[str, ...]
    pos: str
    weight: float  # relative size: share of returns and sales
    hours: OpeningHours
    sorting_site: str


@dataclass(frozen=True)
class SortingSite:
    id: str
    name: str
    sorters: tuple[str, ...]
    hours: OpeningHours


@dataclass(frozen=True)
class Plant:
    """The brewery's filling line and bottle washer."""

    filling_site: str
    filler: str
    washing_site: str
    washer: str
    hours: OpeningHours


@dataclass(frozen=True)
class World:
    products: tuple[ProductInfo, ...]
    one_way: tuple[ProductInfo, ...]
    reusable: dict[str, ProductInfo]  # by packaging type id
    foreign_gtins: tuple[str, ...]
    shops: tuple[Shop, ...]
    sorting_sites: dict[str, SortingSite]
    plant: Plant
    producers: dict[str, str]  # brand → the device declaring its sold volumes
    sites: tuple[Site, ...]
    devices: tuple[Device, ...]

    def seed_file(self) -> SeedFile:
        """The world as a registry to apply before publishing."""
        types = {p.packaging.id: p.packaging for p in self.products}
        return SeedFile(
            packaging_types=list(types.values()),
            products=[
                Product(
                    gtin=p.gtin,
                    packaging_type=p.packaging.id,
                    brand=p.brand,
                    name=p.name,
                    recycled_content_pct=p.recycled_content_pct,
                )
                for p in self.products
            ],
            sites=list(self.sites),
            devices=list(self.devices),
        )

    def device_ids(self) -> list[str]:
        return [d.id for d in self.devices]


def _slug(text: str) -> str:
    text = text.lower().replace("ø", "o").replace("æ", "ae").replace("å", "a")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_text).split())


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], (a[1] - b[1]) * math.cos(math.radians(a[0])))


def build_world(scenario: Scenario) -> World:
    """The world of `scenario`: the same for the same world parameters and seed."""
    params = scenario.world
    rng = random.Random(f"looptrack-world:{scenario.seed}")
    zone = ZoneInfo(params.timezone)
    loops = {loop.packaging_type for loop in scenario.reuse}
    products: list[ProductInfo] = []
    for gtin, type_id, brand, name, share in CATALOGUE:
        packaging = PACKAGING_TYPES[type_id]
        if packaging.reusable and type_id not in loops:
            continue
        material = packaging.material.value
        products.append(
            ProductInfo(
                gtin, packaging, brand, name, share, STREAMS[material], OFF_STREAMS[material],
                RECYCLED_CONTENT_OVERRIDES.get(gtin),
            )
        )  # fmt: skip
    unknown = loops - {p.packaging.id for p in products}
    if unknown:
        raise ValueError(f"no reusable product of packaging type(s) {sorted(unknown)}")
    sites: list[Site] = []
    devices: list[Device] = []

    def hours(weekdays: str | None, saturday: str | None, sunday: str | None) -> OpeningHours:
        return OpeningHours.from_text(zone, weekdays, saturday, sunday, params.holidays)

    sorting: dict[str, SortingSite] = {}
    coordinates: dict[str, tuple[float, float]] = {}
    for n in range(params.sorting_sites):
        if n < len(SORTING_SITES):
            site_id, name, lat, lon = SORTING_SITES[n]
        else:
            site_id, name = f"sorting-{n + 1:02d}", f"Sorting site {n + 1}"
            lat, lon = 59.0 + rng.uniform(0, 4), 6.0 + rng.uniform(0, 5)
        sorters = tuple(f"sorter-{site_id.removeprefix('sorting-')}-{k}" for k in (1, 2))
        sh = params.sorting_hours
        sorting[site_id] = SortingSite(
            site_id, name, sorters, hours(sh.weekdays, sh.saturday, sh.sunday)
        )
        coordinates[site_id] = (lat, lon)
        sites.append(Site(id=site_id, name=name, kind=SiteKind.SORTING, lat=lat, lon=lon))
        devices += [Device(id=d, site=site_id, kind=DeviceKind.SORTER) for d in sorters]

    shops: list[Shop] = []
    low, high = sorted(params.rvms_per_shop)
    for n in range(params.shops):
        town, lat, lon = TOWNS[n % len(TOWNS)]
        if n >= len(TOWNS):
            lat, lon = lat + rng.uniform(-0.02, 0.02), lon + rng.uniform(-0.02, 0.02)
        chain = CHAINS[rng.randrange(len(CHAINS))]
        short = f"{n + 1:02d}-{_slug(town)}"[:40]
        site_id = f"shop-{short}"
        rvms = tuple(f"rvm-{short}-{k + 1}" for k in range(rng.randint(low, high)))
        pos = f"pos-{short}"
        sh = params.shop_hours
        sunday = params.sunday_hours if rng.random() < params.sunday_open_share else sh.sunday
        nearest = min(sorting, key=lambda s: _distance((lat, lon), coordinates[s]))
        shops.append(
            Shop(
                site_id,
                f"{chain} {town}",
                rvms,
                pos,
                rng.lognormvariate(0, SHOP_SIZE_SIGMA),
                hours(sh.weekdays, sh.saturday, sunday),
                nearest,
            )
        )
        sites.append(Site(id=site_id, name=f"{chain} {town}", kind=SiteKind.SHOP, lat=lat, lon=lon))
        devices += [Device(id=d, site=site_id, kind=DeviceKind.RVM) for d in rvms]
        devices.append(Device(id=pos, site=site_id, kind=DeviceKind.POS))

    ph = params.plant_hours
    plant = Plant(
        "plant-nordlys", "filler-nordlys-1", "wash-nordlys", "washer-nordlys-1",
        hours(ph.weekdays, ph.saturday, ph.sunday),
    )  # fmt: skip
    sites += [
        Site(id=plant.filling_site, name="Nordlys brewery filling line", kind=SiteKind.FILLING,
             lat=59.9050, lon=10.7850),
        Site(id=plant.washing_site, name="Nordlys bottle and crate washer", kind=SiteKind.WASHING,
             lat=59.9055, lon=10.7860),
    ]  # fmt: skip
    devices += [
        Device(id=plant.filler, site=plant.filling_site, kind=DeviceKind.FILLER),
        Device(id=plant.washer, site=plant.washing_site, kind=DeviceKind.WASHER),
    ]
    one_way = tuple(p for p in products if not p.packaging.reusable)
    producers: dict[str, str] = {}
    for brand in sorted({p.brand for p in one_way}):
        site_id, device_id = f"hq-{brand}", f"declare-{brand}"
        producers[brand] = device_id
        name = f"{brand.capitalize()} head office"
        sites.append(Site(id=site_id, name=name, kind=SiteKind.OTHER))
        devices.append(Device(id=device_id, site=site_id, kind=DeviceKind.OTHER))
    return World(
        products=tuple(products),
        one_way=one_way,
        reusable={p.packaging.id: p for p in products if p.packaging.reusable},
        foreign_gtins=tuple(FOREIGN_GTINS),
        shops=tuple(shops),
        sorting_sites=sorting,
        plant=plant,
        producers=producers,
        sites=tuple(sites),
        devices=tuple(devices),
    )


def world_seed(scenario: Scenario) -> SeedFile:
    """The registry of `scenario`'s world: packaging types, products, sites, devices."""
    return build_world(scenario).seed_file()
