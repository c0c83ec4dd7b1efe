"""Registry endpoints: packaging types, products, GRAI asset types, sites and devices (PUT
is an upsert)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

import psycopg
from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from api.dependencies import Conn, Limit, Operator, RegistryReader, parse_asset_type, parse_gtin
from api.problems import ERROR_RESPONSES, Problem
from api.registry import service as registry
from api.time_window import Instant
from schemas.api_keys import Principal, Role
from schemas.circularity import (
    SortingStream,
    SortingStreamFields,
    Target,
    TargetFields,
    upsert_sorting_stream,
    upsert_target,
)
from schemas.events import STREAM_PATTERN
from schemas.grai import grai_item_class
from schemas.registry import (
    DEVICE_ID_PATTERN,
    SLUG_PATTERN,
    AssetType,
    DeclarationError,
    Device,
    DeviceFields,
    DeviceId,
    PackagingType,
    PackagingTypeFields,
    Product,
    ProductFields,
    Site,
    SiteFields,
    Slug,
    upsert_asset_type,
    upsert_device,
    upsert_packaging_type,
    upsert_product,
    upsert_site,
)

router = APIRouter(prefix="/v1", tags=["registry"], responses=ERROR_RESPONSES)
T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)

IdPath = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=64)]
DevicePath = Annotated[str, Path(pattern=DEVICE_ID_PATTERN, max_length=64)]
# Digits only here; the check digit is verified by parse_gtin (422 with the reason).
GtinPath = Annotated[str, Path(pattern=r"^([0-9]{8}|[0-9]{12,14})$")]
# Only bounded here: parse_asset_type checks digits, length (14: a GTIN-13 typed without
# its padding 0 is the likely slip), padding digit and check digit, 422 with the reason.
# When a PUT's material figures take effect (docs/materials.md).
DeclaredFrom = Annotated[
    Instant | None,
    Query(
        description="when the material figures of this PUT take effect (RFC 3339, rounded "
        "down to the quarter hour); default: the next quarter hour. Events already counted "
        "from then on are re-filed under them."
    ),
]
StreamPath = Annotated[str, Path(pattern=STREAM_PATTERN, max_length=40)]
AssetTypePath = Annotated[
    str, Path(max_length=64, description="GRAI asset type: 14 digits, the first a padding 0")
]


class DeviceStatus(Device):
    """A device with what the ingest worker knows of it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "rvm-oslo-7",
                    "site": "oslo-grunerlokka",
                    "kind": "rvm",
                    "last_seen": "2026-03-29T14:02:11+02:00",
                    "online": True,
                    "events_today": 812,
                    "seq_gaps": 0,
                }
            ]
        }
    )

    last_seen: datetime | None
    online: bool | None
    events_today: int
    seq_gaps: int


class Page(BaseModel, Generic[T]):
    """One page of a list; `next` is the `after` value of the following page, if any."""

    items: list[T]
    next: str | None = None


def _validated(model: type[R], data: dict[str, Any]) -> R:
    """Path id + body → record; a bad id is a 422 like a bad body field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise Problem(422, "validation", detail) from None


def _created(response: Response, created: bool) -> None:
    response.status_code = 201 if created else 200


# -- packaging types ----------------------------------------------------------------------


@router.put(
    "/packaging-types/{id}",
    response_model=PackagingType,
    responses={201: {"model": PackagingType, "description": "Created"}},
)
def put_packaging_type(
    id: IdPath,
    body: PackagingTypeFields,
    conn: Conn,
    _: Operator,
    response: Response,
    declared_from: DeclaredFrom = None,
) -> dict[str, Any]:
    """Create or replace a packaging type (operator). Its products declare its material
    figures from `declared_from` (docs/materials.md)."""
    record = _validated(PackagingType, {**body.model_dump(), "id": id})
    try:
        _created(response, upsert_packaging_type(conn, record, declared_from=declared_from))
    except DeclarationError as exc:
        raise Problem(422, "invalid-declaration", str(exc)) from None
    return record.model_dump()


@router.get("/packaging-types/{id}", response_model=PackagingType)
def get_packaging_type(id: IdPath, conn: Conn, _: RegistryReader) -> dict[str, Any]:
    """One packaging type (operator, brand)."""
    row = registry.find_packaging_type(conn, id)
    if row is None:
        raise Problem(404, "not-found", f"no packaging type {id!r}")
    return row


@router.get("/packaging-types", response_model=Page[PackagingType])
def list_packaging_types(conn: Conn, _: RegistryReader, limit: Limit = 100) -> dict[str, Any]:
    """All packaging types (operator, brand)."""
    return {"items": registry.packaging_types(conn, limit=limit)}


# -- products -----------------------------------------------------------------------------


@router.put(
    "/products/{gtin}",
    response_model=Product,
    responses={201: {"model": Product, "description": "Created"}},
)
def put_product(
    gtin: GtinPath,
    body: ProductFields,
    conn: Conn,
    caller: RegistryReader,
    response: Response,
    declared_from: DeclaredFrom = None,
) -> dict[str, Any]:
    """Create or replace a product (operator; a brand only for its own brand). Its
    material figures count from `declared_from` (docs/materials.md)."""
    gtin14 = parse_gtin(gtin)
    record = _validated(Product, {**body.model_dump(), "gtin": gtin14})
    _check_registrant(conn, caller, body, gtin14, f"gtin {gtin14}")
    return _registered(
        response, body, lambda: upsert_product(conn, record, declared_from=declared_from), record
    )


class Declaration(BaseModel):
    """What a product declared for its events from `declared_from` on (null: all time
    before its next declaration)."""

    declared_from: datetime | None
    material: str
    weight_g: Decimal | None
    recycled_content_pct: Decimal
    renewable_content_pct: Decimal
    fibre_based: bool
    saved_at: datetime


@router.get("/products/{gtin}/declarations", response_model=Page[Declaration])
def list_declarations(gtin: GtinPath, conn: Conn, caller: RegistryReader) -> dict[str, Any]:
    """A product's material declarations, newest first (operator; a brand its own)."""
    gtin14 = parse_gtin(gtin)
    rows = registry.declarations(conn, gtin14, brand=caller.brand)
    if not rows:
        raise Problem(404, "not-found", f"no product with gtin {gtin14}")
    return {"items": rows}


@router.get("/products/{gtin}", response_model=Product)
def get_product(gtin: GtinPath, conn: Conn, caller: RegistryReader) -> dict[str, Any]:
    """One product (operator; a brand sees only its own, others are 404)."""
    gtin14 = parse_gtin(gtin)
    row = registry.find_product(conn, gtin14, brand=caller.brand)
    if row is None:
        raise Problem(404, "not-found", f"no product with gtin {gtin14}")
    return row


@router.get("/products", response_model=Page[Product])
def list_products(
    conn: Conn,
    caller: RegistryReader,
    brand: Annotated[Slug | None, Query()] = None,
    packaging_type: Annotated[Slug | None, Query()] = None,
    after: Annotated[
        str, Query(pattern=r"^[0-9]{0,14}$", description="last gtin of the previous page")
    ] = "",
    limit: Limit = 100,
) -> dict[str, Any]:
    """Products, by GTIN (a brand key lists its own brand whatever `brand` says)."""
    return _page_of(caller, registry.products, conn, "gtin", brand, packaging_type, after, limit)


def _check_registrant(
    conn: psycopg.Connection[Any], caller: Principal, body: ProductFields, key: str, named: str
) -> None:
    """A brand key registers only its own brand, and never over another brand's key."""
    if caller.role is not Role.BRAND:
        return
    if body.brand != caller.brand:
        raise Problem(403, "forbidden", f"a key of brand {caller.brand!r} may only register "
                      f"products and asset types of that brand")  # fmt: skip
    owner = registry.product_owner(conn, key)
    if owner is not None and owner != caller.brand:
        raise Problem(403, "forbidden", f"{named} belongs to another brand")


def _registered(
    response: Response, body: ProductFields, upsert: Callable[[], bool], record: R
) -> dict[str, Any]:
    """Run a product's or asset type's upsert; 201 when it created the row."""
    try:
        _created(response, upsert())
    except psycopg.errors.ForeignKeyViolation:
        raise Problem(
            422, "unknown-packaging-type", f"unknown packaging type {body.packaging_type!r}"
        ) from None
    except DeclarationError as exc:
        raise Problem(422, "invalid-declaration", str(exc)) from None
    return record.model_dump()


def _page_of(
    caller: Principal,
    read: Callable[..., list[dict[str, Any]]],
    conn: psycopg.Connection[Any],
    key: str,
    brand: str | None,
    packaging_type: str | None,
    after: str,
    limit: int,
) -> dict[str, Any]:
    """A page of products or asset types by `key`; a brand key lists its own brand only."""
    if caller.role is Role.BRAND:
        if brand is not None and brand != caller.brand:
            return {"items": []}
        brand = caller.brand
    items = read(conn, brand=brand, packaging_type=packaging_type, after=after, limit=limit)
    return {"items": items, "next": items[-1][key] if len(items) == limit else None}


# -- GRAI asset types ---------------------------------------------------------------------


@router.put(
    "/asset-types/{grai}",
    response_model=AssetType,
    responses={201: {"model": AssetType, "description": "Created"}},
)
def put_asset_type(
    grai: AssetTypePath,
    body: ProductFields,
    conn: Conn,
    caller: RegistryReader,
    response: Response,
    declared_from: DeclaredFrom = None,
) -> dict[str, Any]:
    """Create or replace a GRAI asset type: the 14-digit asset type of returnable assets
    (crates, pallets) keyed by GRAI, AI 8003 (operator; a brand only for its own brand)."""
    asset_type = parse_asset_type(grai)
    record = _validated(AssetType, {**body.model_dump(), "grai": asset_type})
    _check_registrant(conn, caller, body, grai_item_class(asset_type), f"grai {asset_type}")
    return _registered(
        response,
        body,
        lambda: upsert_asset_type(conn, record, declared_from=declared_from),
        record,
    )


@router.get("/asset-types/{grai}", response_model=AssetType)
def get_asset_type(grai: AssetTypePath, conn: Conn, caller: RegistryReader) -> dict[str, Any]:
    """One GRAI asset type (operator; a brand sees only its own, others are 404)."""
    asset_type = parse_asset_type(grai)
    row = registry.find_asset_type(conn, asset_type, brand=caller.brand)
    if row is None:
        raise Problem(404, "not-found", f"no asset type with grai {asset_type}")
    return row


@router.get("/asset-types", response_model=Page[AssetType])
def list_asset_types(
    conn: Conn,
    caller: RegistryReader,
    brand: Annotated[Slug | None, Query()] = None,
    packaging_type: Annotated[Slug | None, Query()] = None,
    after: Annotated[
        str, Query(pattern=r"^[0-9]{0,14}$", description="last grai of the previous page")
    ] = "",
    limit: Limit = 100,
) -> dict[str, Any]:
    """GRAI asset types, by asset type (a brand key lists its own brand only)."""
    return _page_of(caller, registry.asset_types, conn, "grai", brand, packaging_type, after, limit)


# -- sites and devices --------------------------------------------------------------------


@router.put(
    "/sites/{id}",
    response_model=Site,
    responses={201: {"model": Site, "description": "Created"}},
)
def put_site(
    id: IdPath, body: SiteFields, conn: Conn, _: Operator, response: Response
) -> dict[str, Any]:
    """Create or replace a site (operator)."""
    record = _validated(Site, {**body.model_dump(), "id": id})
    _created(response, upsert_site(conn, record))
    return record.model_dump()


@router.get("/sites/{id}", response_model=Site)
def get_site(id: IdPath, conn: Conn, _: Operator) -> dict[str, Any]:
    """One site (operator)."""
    row = registry.find_site(conn, id)
    if row is None:
        raise Problem(404, "not-found", f"no site {id!r}")
    return row


@router.put(
    "/devices/{id}",
    response_model=Device,
    responses={201: {"model": Device, "description": "Created"}},
)
def put_device(
    id: DevicePath, body: DeviceFields, conn: Conn, _: Operator, response: Response
) -> dict[str, Any]:
    """Create or replace a device (operator)."""
    record = _validated(Device, {**body.model_dump(), "id": id})
    try:
        _created(response, upsert_device(conn, record))
    except psycopg.errors.ForeignKeyViolation:
        raise Problem(422, "unknown-site", f"unknown site {body.site!r}") from None
    return record.model_dump()


@router.get("/devices/{id}", response_model=Device)
def get_device(id: DevicePath, conn: Conn, _: Operator) -> dict[str, Any]:
    """One device (operator)."""
    row = registry.find_device(conn, id)
    if row is None:
        raise Problem(404, "not-found", f"no device {id!r}")
    return row


@router.get("/devices", response_model=Page[DeviceStatus])
def list_devices(
    conn: Conn,
    _: Operator,
    site_id: Annotated[Slug | None, Query()] = None,
    after: Annotated[DeviceId | None, Query(description="last id of the previous page")] = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Devices with last seen, online, events today (UTC) and missing seq numbers."""
    items = registry.device_statuses(conn, site_id=site_id, after=after or "", limit=limit)
    return {"items": items, "next": items[-1]["id"] if len(items) == limit else None}


# -- sorting streams and circularity targets -------------------------------------------------


@router.put(
    "/sorting-streams/{stream}",
    response_model=SortingStream,
    responses={201: {"model": SortingStream, "description": "Created"}},
)
def put_sorting_stream(
    stream: StreamPath, body: SortingStreamFields, conn: Conn, _: Operator, response: Response
) -> dict[str, Any]:
    """Map a sorting stream to its outcome (operator). Reports read the mapping when asked:
    a correction applies to past sorting too."""
    record = _validated(SortingStream, {**body.model_dump(), "stream": stream})
    _created(response, upsert_sorting_stream(conn, record))
    return record.model_dump()


@router.get("/sorting-streams/{stream}", response_model=SortingStream)
def get_sorting_stream(stream: StreamPath, conn: Conn, _: Operator) -> dict[str, Any]:
    """One sorting stream and its outcome (operator)."""
    row = registry.find_sorting_stream(conn, stream)
    if row is None:
        raise Problem(404, "not-found", f"no sorting stream {stream!r} (it counts as unmapped)")
    return row


@router.get("/sorting-streams", response_model=Page[SortingStream])
def list_sorting_streams(conn: Conn, _: Operator) -> dict[str, Any]:
    """Every mapped sorting stream (operator)."""
    return {"items": registry.sorting_streams(conn)}


@router.put(
    "/targets/{id}",
    response_model=Target,
    responses={201: {"model": Target, "description": "Created"}},
)
def put_target(
    id: IdPath, body: TargetFields, conn: Conn, _: Operator, response: Response
) -> dict[str, Any]:
    """Create or replace a circularity target (operator); measured by
    `GET /v1/stats/targets`."""
    record = _validated(Target, {**body.model_dump(), "id": id})
    _created(response, upsert_target(conn, record))
    return record.model_dump()


@router.get("/targets/{id}", response_model=Target)
def get_target(id: IdPath, conn: Conn, _: Operator) -> dict[str, Any]:
    """One circularity target (operator)."""
    row = registry.find_target(conn, id)
    if row is None:
        raise Problem(404, "not-found", f"no target {id!r}")
    return row


@router.get("/targets", response_model=Page[Target])
def list_targets(conn: Conn, _: Operator) -> dict[str, Any]:
    """Every circularity target (operator)."""
    return {"items": registry.registered_targets(conn)}


@router.delete("/targets/{id}", status_code=204)
def delete_target(id: IdPath, conn: Conn, _: Operator) -> Response:
    """Remove a circularity target (operator)."""
    if not registry.delete_target(conn, id):
        raise Problem(404, "not-found", f"no target {id!r}")
    return Response(status_code=204)
