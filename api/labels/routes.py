"""QR labels (SPEC §8): commission a batch of serialised items and download their labels
(brand keys for their own products; admin), and one item's QR code as SVG or PNG."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from api.dependencies import (
    Conn,
    parse_asset_type,
    parse_grai,
    parse_gtin,
    parse_serial,
    require,
    scoped_brand,
    settings,
)
from api.items.service import item_name
from api.labels.cache import LabelCache, download_key
from api.labels.commissioning import UnknownProduct, batch_items, commission, item_product
from api.labels.sheets import RENDER_WAIT_S, Label, LabelFormat, RenderBusy, labels_for, render
from api.problems import ERROR_RESPONSES, Problem
from schemas.api_keys import Principal, Role
from schemas.digital_link import build_uri
from schemas.grai import AI_GRAI, GRAI_PATTERN, grai_item_class
from schemas.settings import Settings

router = APIRouter(prefix="/v1", tags=["labels"], responses=ERROR_RESPONSES)
LabelMaker = Annotated[Principal, Depends(require(Role.BRAND))]
ItemReader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.BRAND))]


MEDIA_TYPES = {
    LabelFormat.PDF: "application/pdf",
    LabelFormat.PNG: "image/png",
    LabelFormat.SVG: "image/svg+xml",
    LabelFormat.ZIP: "application/zip",
}


class LabelRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"gtin": "07038010009990", "count": 24, "format": "pdf"},
                {"grai": "07038010000027", "count": 40, "format": "pdf"},
            ]
        },
    )

    gtin: str | None = Field(
        default=None, max_length=14, description="GTIN-8/12/13/14 of one of your products"
    )
    grai: str | None = Field(
        default=None,
        max_length=14,
        description="Instead of `gtin`: a GRAI asset type (AI 8003, 14 digits) of yours; "
        "each label then carries a whole GRAI, the asset type and a new serial.",
    )
    count: int = Field(ge=1, description="items to commission (at most LOOPTRACK_LABELS_MAX_COUNT)")
    format: LabelFormat = LabelFormat.PDF

    @model_validator(mode="after")
    def _one_key(self) -> LabelRequest:
        if (self.gtin is None) == (self.grai is None):
            raise ValueError("give either gtin or grai")
        return self


class LabelledItem(BaseModel):
    serial: str
    url: str


class LabelBatch(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "batch_id": "3f0c2a5e-1b7d-4c9a-8e21-6d5f4b3a2c10",
                    "items": [
                        {
                            "serial": "7KQ2M9XH4PZ0",
                            "url": "https://id.example.no/01/07038010009990/21/7KQ2M9XH4PZ0",
                        }
                    ],
                    "download": "/v1/labels/3f0c2a5e-1b7d-4c9a-8e21-6d5f4b3a2c10",
                }
            ]
        }
    )

    batch_id: uuid.UUID
    items: list[LabelledItem]
    download: str


def _render(labels: list[Label], fmt: LabelFormat, grid: tuple[int, int] = (3, 8)) -> bytes:
    try:
        return render(labels, fmt, grid=grid)
    except ValueError as exc:
        raise Problem(422, "one-label-only", str(exc)) from None
    except RenderBusy as exc:
        raise busy(exc) from None


# Downloads are the brand's own: no shared cache may keep them, and a browser or
# `curl --etag-compare` asks again each time, answered 304 while the labels are the same.
DOWNLOAD_CACHE_CONTROL = "private, no-cache"
_making_cache = threading.Lock()


def label_cache(request: Request, config: Annotated[Settings, Depends(settings)]) -> LabelCache:
    """The app's cache of rendered downloads, made at its first use (one per process and
    app, LOOPTRACK_LABELS_CACHE_SIZE bytes); /metrics reads its counters."""
    state = request.app.state
    with _making_cache:
        cache: LabelCache | None = getattr(state, "label_cache", None)
        if cache is None:
            cache = state.label_cache = LabelCache(config.labels_cache_size)
    return cache


class MadeWhenSent(Response):
    """A download whose file is made (from the cache, by waiting for the same render, or
    rendered) only when the response is sent: after the endpoint returned and its
    database connection went back to the pool. Requests waiting for a render slot or for
    an identical render then hold no connection; twenty of them held every one of the
    pool's (api.app.POOL_MAX), and every other request waited for the renders. A Problem
    raised while making it (503 busy) is answered like one from the endpoint."""

    def __init__(self, make: Callable[[], bytes], media_type: str, headers: dict[str, str]) -> None:
        super().__init__(media_type=media_type, headers=headers)
        self._make = make
        self._sent_headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await run_in_threadpool(self._make)
        made = Response(body, media_type=self.media_type, headers=self._sent_headers)
        await made(scope, receive, send)


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of If-None-Match (`*` or a list of tags) with `etag`."""
    if if_none_match is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags


def busy(exc: RenderBusy) -> Problem:
    """503 for a render refused for lack of a slot: nothing was stored (the request's
    transaction rolls back), so sending it again later is safe."""
    detail = f"{exc}: nothing was stored, send the request again later"
    return Problem(503, "busy", detail, headers={"Retry-After": str(int(RENDER_WAIT_S))})


@router.post("/labels", response_model=LabelBatch, status_code=201)
def post_labels(
    body: LabelRequest,
    conn: Conn,
    caller: LabelMaker,
    config: Annotated[Settings, Depends(settings)],
    request: Request,
) -> dict[str, Any]:
    """Commission `count` new items of one of your products (or returnable assets of one
    of your GRAI asset types), each with a random serial (60 bits, never reused for the
    GTIN or asset type) and a `commissioned` event; their labels are at `download` in the
    requested format."""
    if body.grai is not None:
        item_class = grai_item_class(parse_asset_type(body.grai))
        unknown = f"no asset type {body.grai} of yours"
    else:
        item_class = parse_gtin(body.gtin or "")
        unknown = f"no product {item_class} of yours"
    if body.count > config.labels_max_count:
        raise Problem(
            422,
            "too-many-labels",
            f"count {body.count} is above the maximum of {config.labels_max_count} per batch",
        )
    if body.format in (LabelFormat.PNG, LabelFormat.SVG) and body.count != 1:
        raise Problem(
            422,
            "one-label-only",
            f"format {body.format.value} holds one label: use pdf or zip for {body.count}",
        )
    brand, _ = scoped_brand(caller, None)
    try:
        batch = commission(
            conn,
            item_class,
            body.count,
            body.format.value,
            created_by=str(caller.key_id),
            brand=brand,
        )
    except UnknownProduct:
        raise Problem(404, "not-found", unknown) from None
    return {
        "batch_id": batch.id,
        "items": [
            {"serial": s, "url": build_uri(config.public_base_url, item_class, s)}
            for s in batch.serials
        ],
        "download": str(request.url_for("get_label_batch", batch_id=batch.id).path),
    }


@router.get(
    "/labels/{batch_id}",
    response_class=Response,
    responses={
        200: {"content": {m: {} for m in MEDIA_TYPES.values()}},
        304: {"description": "The labels of the `If-None-Match` ETag, unchanged"},
    },
)
def get_label_batch(
    batch_id: uuid.UUID,
    conn: Conn,
    caller: LabelMaker,
    config: Annotated[Settings, Depends(settings)],
    cache: Annotated[LabelCache, Depends(label_cache)],
    fmt: Annotated[LabelFormat | None, Query(alias="format")] = None,
    columns: Annotated[int, Query(ge=1, le=8, description="PDF labels across")] = 3,
    rows: Annotated[int, Query(ge=1, le=20, description="PDF labels down")] = 8,
    if_none_match: Annotated[
        str | None,
        Header(max_length=2000, description="ETags of earlier downloads: 304 if one is this"),
    ] = None,
) -> Response:
    """A batch's labels again, in its format or another (`format=`); PDF sheets are A4
    with `columns` x `rows` labels (3 x 8 and 4 x 10 are common label stocks). The same
    download again is served from a cache without rendering; its `ETag` changes with the
    labels, format or layout, and `If-None-Match` with it is answered 304."""
    brand, _ = scoped_brand(caller, None)
    # Access first: the cache and the ETag are only ever reached for the caller's batch.
    found = batch_items(conn, batch_id, brand)
    if found is None:
        raise Problem(404, "not-found", f"no label batch {batch_id}")
    batch, product = found
    labels = labels_for(batch.item_class, batch.serials, product, config.public_base_url)
    fmt = fmt or LabelFormat(batch.format)
    grid = (columns, rows)
    key = download_key(batch_id, labels, fmt, grid)
    # Weak: the same labels in the same layout, though a zip's file times may differ.
    headers = {"ETag": f'W/"{key.hex()[:32]}"', "Cache-Control": DOWNLOAD_CACHE_CONTROL}
    if _etag_matches(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return MadeWhenSent(
        lambda: cache.get_or_render(key, lambda: _render(labels, fmt, grid))[0],
        MEDIA_TYPES[fmt],
        headers,
    )


# Declared before /items/{gtin}/{serial}/qr.{kind}, which "8003/…" would reach as a GTIN.
@router.get(
    f"/items/{AI_GRAI}/{{grai}}/qr.{{kind}}",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}, "image/png": {}}}},
)
def get_asset_qr(
    grai: Annotated[str, Path(max_length=30, pattern=GRAI_PATTERN)],
    kind: Annotated[str, Path(pattern="^(svg|png)$")],
    conn: Conn,
    caller: ItemReader,
    config: Annotated[Settings, Depends(settings)],
) -> Response:
    """The QR code of a returnable asset's Digital Link address, /8003/{grai} (operator;
    brand for its own asset types)."""
    asset_type, serial = parse_grai(grai)
    if serial is None:
        raise Problem(422, "invalid-grai", f"grai {grai}: no serial, so not one asset")
    return _item_qr(conn, grai_item_class(asset_type), serial, kind, caller, config)


@router.get(
    "/items/{gtin}/{serial}/qr.{kind}",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}, "image/png": {}}}},
)
def get_item_qr(
    gtin: Annotated[str, Path(max_length=14)],
    serial: Annotated[str, Path(max_length=60)],
    kind: Annotated[str, Path(pattern="^(svg|png)$")],
    conn: Conn,
    caller: ItemReader,
    config: Annotated[Settings, Depends(settings)],
) -> Response:
    """The QR code of an item's Digital Link address (operator; brand for its own)."""
    return _item_qr(conn, parse_gtin(gtin), parse_serial(serial), kind, caller, config)


def _item_qr(
    conn: Conn, item_class: str, serial: str, kind: str, caller: Principal, config: Settings
) -> Response:
    brand, _ = scoped_brand(caller, None)
    product = item_product(conn, item_class, serial, brand)
    if product is None:
        raise Problem(404, "not-found", f"no {item_name(item_class, serial)}")
    labels = labels_for(item_class, [serial], product, config.public_base_url)
    return Response(_render(labels, LabelFormat(kind)), media_type=MEDIA_TYPES[LabelFormat(kind)])
