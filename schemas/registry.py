"""Registry records (packaging types, products, GRAI asset types, sites, devices) and
their upserts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import psycopg
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from schemas.grai import ASSET_TYPE_PATTERN, grai_item_class, validate_asset_type
from schemas.gtin import normalize_gtin
from schemas.named_queries import load_queries
from schemas.retention import pruned_horizon
from schemas.rollups import lock_products, move_counts

QUERIES = load_queries("schemas", "sql/queries/registry.sql")

SLUG_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
# One MQTT topic level: no '/', '+' or '#'.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
# Any text but NUL, which PostgreSQL's text type cannot hold.
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
Gtin14 = Annotated[str, AfterValidator(normalize_gtin)]
AssetTypeKey = Annotated[
    str, Field(pattern=ASSET_TYPE_PATTERN), AfterValidator(validate_asset_type)
]


class Material(StrEnum):
    PET = "PET"
    HDPE = "HDPE"
    PP = "PP"
    GLASS = "glass"
    ALUMINIUM = "aluminium"
    STEEL = "steel"
    FIBRE = "fibre"
    OTHER = "other"


class SiteKind(StrEnum):
    SHOP = "shop"
    SORTING = "sorting"
    FILLING = "filling"
    WASHING = "washing"
    OTHER = "other"


class DeviceKind(StrEnum):
    RVM = "rvm"
    SORTER = "sorter"
    FILLER = "filler"
    WASHER = "washer"
    POS = "pos"
    OTHER = "other"


Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]
"""A share of a package's weight, in percent (0 to 100, to 0.01)."""


def _content_at_most_whole(recycled: Decimal | None, renewable: Decimal | None) -> None:
    if recycled is not None and renewable is not None and recycled + renewable > 100:
        raise ValueError(
            f"recycled_content_pct {recycled} + renewable_content_pct {renewable} "
            "exceed 100 % of the package's weight"
        )


class DeclarationError(ValueError):
    """What a product would declare is impossible (its own content figures and its
    packaging type's add up to more than the whole package)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _with_example(example: dict[str, Any]) -> ConfigDict:
    """A record's config with one example for the OpenAPI document."""
    return ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [example]})


# One example per record for the OpenAPI document.
PACKAGING_TYPE_EXAMPLE: dict[str, Any] = {
    "name": "Beer crate 24 x 0.33 l",
    "material": "HDPE",
    "reusable": True,
    "target_trips": 60,
    "deposit": 1000,
    "weight_g": "1600",
    "recycled_content_pct": "25",
    "renewable_content_pct": "0",
    "fibre_based": False,
}
PRODUCT_EXAMPLE: dict[str, Any] = {
    "packaging_type": "pet-0.5l",
    "brand": "fjordbrus",
    "name": "Fjordbrus Cola 0.5 l",
    "recycled_content_pct": "50",
}
SITE_EXAMPLE: dict[str, Any] = {
    "name": "Kiwi Grünerløkka",
    "kind": "shop",
    "lat": 59.9226,
    "lon": 10.759,
}
DEVICE_EXAMPLE: dict[str, Any] = {"site": "oslo-grunerlokka", "kind": "rvm"}


class PackagingTypeFields(_Record):
    """A packaging type's data; the id comes from the URL or the seed file."""

    model_config = _with_example(PACKAGING_TYPE_EXAMPLE)

    name: Name
    material: Material
    reusable: bool = False
    target_trips: Annotated[int, Field(gt=0, le=100_000)] | None = None
    deposit: Annotated[int, Field(ge=0, le=100_000_00, description="minor units (øre)")] = 0
    weight_g: Annotated[Decimal, Field(gt=0, le=1_000_000, decimal_places=2)] | None = None
    recycled_content_pct: Percent = Field(
        default=Decimal(0), description="share of the weight from recycled material (%)"
    )
    renewable_content_pct: Percent = Field(
        default=Decimal(0), description="share of the weight from renewable material (%)"
    )
    fibre_based: bool = Field(default=False, description="paper, board or moulded fibre")

    @model_validator(mode="after")
    def _target_trips_only_for_reusable(self) -> PackagingTypeFields:
        if self.target_trips is not None and not self.reusable:
            raise ValueError("target_trips is only meaningful for reusable packaging")
        _content_at_most_whole(self.recycled_content_pct, self.renewable_content_pct)
        return self


class PackagingType(PackagingTypeFields):
    """A kind of package: deposit bottle, can, crate, cup…"""

    model_config = _with_example({"id": "crate-24", **PACKAGING_TYPE_EXAMPLE})

    id: Slug


class ProductFields(_Record):
    """What a GTIN is: its packaging type, brand and name."""

    model_config = _with_example(PRODUCT_EXAMPLE)

    packaging_type: Slug
    brand: Slug
    name: Name
    recycled_content_pct: Percent | None = Field(
        default=None, description="this product's own recycled share (%); null: its type's"
    )
    renewable_content_pct: Percent | None = Field(
        default=None, description="this product's own renewable share (%); null: its type's"
    )
    fibre_based: bool | None = Field(default=None, description="null: its packaging type's")

    @model_validator(mode="after")
    def _content(self) -> ProductFields:
        _content_at_most_whole(self.recycled_content_pct, self.renewable_content_pct)
        return self


class Product(ProductFields):
    """A GTIN and what it is packed in."""

    model_config = _with_example({"gtin": "07038010001239", **PRODUCT_EXAMPLE})

    gtin: Gtin14


class AssetType(ProductFields):
    """A GRAI asset type (the first 14 digits of a returnable asset's GRAI, AI 8003): what
    its crates or pallets are, as a product is for a GTIN."""

    model_config = _with_example(
        {
            "grai": "07038010000027",
            "packaging_type": "crate-24",
            "brand": "fjordbrus",
            "name": "Fjordbrus crate",
        }
    )

    grai: AssetTypeKey


class SiteFields(_Record):
    """A site's data."""

    model_config = _with_example(SITE_EXAMPLE)

    name: Name
    kind: SiteKind
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None


class Site(SiteFields):
    """A shop, sorting site, filling or washing plant."""

    model_config = _with_example({"id": "oslo-grunerlokka", **SITE_EXAMPLE})

    id: Slug


class DeviceFields(_Record):
    """Where a device stands and what it is."""

    model_config = _with_example(DEVICE_EXAMPLE)

    site: Slug
    kind: DeviceKind


class Device(DeviceFields):
    """An RVM, sorter, filler, washer or point of sale, at one site."""

    model_config = _with_example({"id": "rvm-oslo-7", **DEVICE_EXAMPLE})

    id: DeviceId


class SeedFile(_Record):
    """What `looptrack seed FILE` reads; every section optional."""

    packaging_types: list[PackagingType] = []
    products: list[Product] = []
    asset_types: list[AssetType] = []
    sites: list[Site] = []
    devices: list[Device] = []


def _params(record: BaseModel) -> dict[str, Any]:
    return record.model_dump(mode="python")


def _upsert(conn: psycopg.Connection[Any], query: str, record: BaseModel) -> bool:
    row = conn.execute(QUERIES[query], _params(record)).fetchone()
    return bool(row and row[0])


def upsert_packaging_type(
    conn: psycopg.Connection[Any], record: PackagingType, *, declared_from: datetime | None = None
) -> bool:
    """Create or replace a packaging type; True when it was created. Its products declare
    the new material figures (declare_materials) from `declared_from`, or from the next
    quarter hour."""
    item_classes = [row[0] for row in conn.execute(QUERIES["products_of_type"], {"id": record.id})]
    lock_products(conn, item_classes)
    created = _upsert(conn, "upsert_packaging_type", record)
    declare_materials(conn, item_classes, declared_from)
    return created


def upsert_product(
    conn: psycopg.Connection[Any], record: Product, *, declared_from: datetime | None = None
) -> bool:
    """Create or replace a product (its packaging type must exist); True when created.
    Counts of its GTIN already in the day rollups follow it to its packaging type and
    brand (needs a transaction: the GTIN's lock slot is held until it ends); its material
    figures are declared as in declare_materials."""
    return _upsert_item_class(conn, record.gtin, record, declared_from)


def upsert_asset_type(
    conn: psycopg.Connection[Any], record: AssetType, *, declared_from: datetime | None = None
) -> bool:
    """Create or replace a GRAI asset type, stored as a product whose item class is
    "8003" + the asset type (schemas.grai); otherwise as upsert_product."""
    return _upsert_item_class(conn, grai_item_class(record.grai), record, declared_from)


def declare_materials(
    conn: psycopg.Connection[Any], item_classes: list[str], declared_from: datetime | None
) -> None:
    """Record what the products now declare (material, weight, content shares) from
    `declared_from` (rounded down to the quarter hour), else from the next quarter hour,
    and re-file their counted events from then on (docs/materials.md). A first
    declaration covers all time. The caller holds the products' lock slots; raises
    DeclarationError when the figures are impossible, or when `declared_from` is before
    the retention's horizon (schemas.retention): the counts to re-file are gone."""
    if not item_classes:
        return
    # Asked with the slots held: a retention run advances its horizon holding them shared.
    horizon = pruned_horizon(conn) if declared_from is not None else None
    if declared_from is not None and horizon is not None and declared_from < horizon:
        since = horizon.astimezone(UTC).isoformat()
        raise DeclarationError(
            f"declared_from {declared_from.isoformat()} is before {since}: the counts of "
            "earlier events were pruned (LOOPTRACK_RETENTION_DAYS) and cannot be re-filed; "
            f"declare from {since} or later"
        )
    try:
        with conn.transaction():  # a savepoint: the error leaves the caller's transaction usable
            # The start used is not fetched: a first declaration's, -infinity, has no
            # Python datetime.
            conn.execute("SELECT FROM declare_materials(%s, %s)", (item_classes, declared_from))
    except psycopg.errors.CheckViolation:
        raise DeclarationError(
            "recycled_content_pct + renewable_content_pct of the product and its packaging "
            "type together exceed 100 %"
        ) from None


def _upsert_item_class(
    conn: psycopg.Connection[Any],
    item_class: str,
    fields: ProductFields,
    declared_from: datetime | None,
) -> bool:
    lock_products(conn, [item_class])
    row = conn.execute(QUERIES["product_key"], {"item_class": item_class}).fetchone()
    old = (row[0], row[1]) if row else (None, None)
    params = {
        "item_class": item_class,
        "packaging_type": fields.packaging_type,
        "brand": fields.brand,
        "name": fields.name,
        "recycled_content_pct": fields.recycled_content_pct,
        "renewable_content_pct": fields.renewable_content_pct,
        "fibre_based": fields.fibre_based,
    }
    inserted = conn.execute(QUERIES["upsert_product"], params).fetchone()
    move_counts(conn, item_class, old, (fields.packaging_type, fields.brand))
    declare_materials(conn, [item_class], declared_from)
    return bool(inserted and inserted[0])


def upsert_site(conn: psycopg.Connection[Any], record: Site) -> bool:
    """Create or replace a site; True when it was created."""
    return _upsert(conn, "upsert_site", record)


def upsert_device(conn: psycopg.Connection[Any], record: Device) -> bool:
    """Create or replace a device (its site must exist); True when it was created."""
    return _upsert(conn, "upsert_device", record)


def insert_device(conn: psycopg.Connection[Any], record: Device) -> None:
    """Register a new device; raises UniqueViolation if the id is taken."""
    conn.execute(QUERIES["insert_device"], _params(record))


def apply_seed(conn: psycopg.Connection[Any], seed: SeedFile) -> dict[str, int]:
    """Upsert everything in `seed`, in dependency order; returns counts per section."""
    # All product slots at once, in order, before any waiting on a running ingest batch:
    # those of the seed's products and of the products its packaging types declare for.
    item_classes = [product.gtin for product in seed.products]
    item_classes += [grai_item_class(asset.grai) for asset in seed.asset_types]
    for packaging_type in seed.packaging_types:
        item_classes += [
            row[0] for row in conn.execute(QUERIES["products_of_type"], {"id": packaging_type.id})
        ]
    lock_products(conn, item_classes)
    for packaging_type in seed.packaging_types:
        upsert_packaging_type(conn, packaging_type)
    for product in seed.products:
        upsert_product(conn, product)
    for asset_type in seed.asset_types:
        upsert_asset_type(conn, asset_type)
    for site in seed.sites:
        upsert_site(conn, site)
    for device in seed.devices:
        upsert_device(conn, device)
    return {
        "packaging_types": len(seed.packaging_types),
        "products": len(seed.products),
        "asset_types": len(seed.asset_types),
        "sites": len(seed.sites),
        "devices": len(seed.devices),
    }
