"""The public GS1 Digital Link resolver (SPEC §8): what a scanned QR code opens, as an HTML
page, a JSON record or an RFC 9264 linkset. No API key, and never a site or device id."""

from __future__ import annotations

import html
from enum import Enum
from http import HTTPStatus
from string import Template
from typing import Annotated, Any
from urllib.parse import quote

import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from api.dependencies import Conn, settings
from api.problems import PROBLEM_JSON, Problem, ProblemDetails, problem_response
from schemas.digital_link import InvalidCode, InvalidSerial, build_uri, parse_code
from schemas.grai import AI_GRAI, InvalidGrai, is_grai_class, key_fields
from schemas.gtin import InvalidGtin
from schemas.named_queries import load_queries
from schemas.settings import Settings

_QUERIES = load_queries("api.items", "resolver.sql")
router = APIRouter(tags=["resolver"])

# Deposits are stored in minor units (øre) and every product of a deployment shares one
# currency; a LOOPTRACK_ setting once a deployment outside Norway needs another.
CURRENCY = "NOK"
MINOR_UNITS = 100  # øre per krone
# The language of the pages and of the linkset's link titles.
LANGUAGE = "en"
# Most media ranges of an Accept header looked at; browsers send fewer than ten.
MAX_ACCEPT_RANGES = 32

LINKSET_JSON = "application/linkset+json"
GS1_VOC = "https://gs1.org/voc/"
# The data is public; GS1-Conformant resolvers must allow cross-origin reads (CORS), and
# one address answers in several representations, so caches must key on Accept.
PUBLIC_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Link",
    "Vary": "Accept",
}
# Pages carry no script and load nothing: a name that slipped past escaping could not run.
HTML_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}


class Representation(Enum):
    HTML = "text/html"
    JSON = "application/json"
    LINKSET = LINKSET_JSON


# `linkType` values (the GS1 resolver convention) that choose the representation whatever
# the Accept header says; any other value is ignored, as are other query parameters.
LINK_TYPES = {
    "all": Representation.LINKSET,  # GS1 Digital Link 1.1
    "linkset": Representation.LINKSET,  # GS1-Conformant Resolver 1.x
    "gs1:pip": Representation.HTML,
    f"{GS1_VOC}pip": Representation.HTML,
    "gs1:defaultLink": Representation.HTML,
    f"{GS1_VOC}defaultLink": Representation.HTML,
    "gs1:traceability": Representation.JSON,
    f"{GS1_VOC}traceability": Representation.JSON,
}


# One example of each record (they hold no null: the OpenAPI document drops nulls, which
# would leave them invalid); an item's is its product's with the serial and trips.
PRODUCT_EXAMPLE: JsonDict = {
    "uri": "https://id.example.no/01/07038010009990",
    "gtin": "07038010009990",
    "product": "Crate 24 x 0.33 l",
    "packaging_type": "crate-24",
    "packaging": "Crate 24",
    "material": "HDPE",
    "reusable": True,
    "target_trips": 60,
    "deposit": 1000,
    "currency": "NOK",
    "how_to_return": (
        "Return it to the shop to get your 10.00 NOK deposit back: it is cleaned and refilled."
    ),
}
ITEM_EXAMPLE: JsonDict = {
    **PRODUCT_EXAMPLE,
    "uri": "https://id.example.no/01/07038010009990/21/7KQ2M9XH4PZ",
    "serial": "7KQ2M9XH4PZ",
    "trips": 12,
}


class PublicProduct(BaseModel):
    """A registered product as anyone may see it."""

    model_config = ConfigDict(json_schema_extra={"examples": [PRODUCT_EXAMPLE]})

    uri: str = Field(description="the GS1 Digital Link URI, as printed in the QR code")
    gtin: str | None = Field(description="14 digits; null for a returnable asset's GRAI")
    grai: str | None = Field(
        default=None,
        description="a returnable asset's GRAI (AI 8003): the asset type, and for one "
        "asset its serial; null for a GTIN",
    )
    product: str
    packaging_type: str
    packaging: str = Field(description="the packaging type's name")
    material: str
    reusable: bool
    target_trips: int | None = Field(description="design life in trips (reusable only)")
    deposit: int = Field(description="minor units (øre) of `currency`; 0 for none")
    currency: str
    how_to_return: str


class PublicItem(PublicProduct):
    """One serialised package as anyone holding it may see it."""

    model_config = ConfigDict(json_schema_extra={"examples": [ITEM_EXAMPLE]})

    serial: str
    trips: int | None = Field(description="trips completed so far; null for single-use")


def format_amount(minor: int) -> str:
    """An amount in minor units (øre) as text, e.g. 200 → "2.00 NOK"."""
    return f"{minor // MINOR_UNITS}.{minor % MINOR_UNITS:02d} {CURRENCY}"


def how_to_return(reusable: bool, deposit: int) -> str:
    """What to do with the empty package; `deposit` in minor units (øre)."""
    if reusable and deposit:
        return (
            f"Return it to the shop to get your {format_amount(deposit)} deposit back: "
            "it is cleaned and refilled."
        )
    if reusable:
        return "Return it to the shop: it is cleaned and refilled."
    if deposit:
        return "Return it to any reverse-vending machine to get your deposit back."
    return "Recycle it with other packaging of the same material."


def find_product(
    conn: psycopg.Connection[Any], item_class: str, base_url: str
) -> PublicProduct | None:
    """The public record of a registered product or GRAI asset type, or None."""
    cursor = conn.cursor(row_factory=dict_row)
    row = cursor.execute(_QUERIES["product"], {"item_class": item_class}).fetchone()
    if row is None:
        return None
    return PublicProduct(
        **{**row, **key_fields(item_class, None)},
        uri=build_uri(base_url, item_class),
        currency=CURRENCY,
        how_to_return=how_to_return(row["reusable"], row["deposit"]),
    )


def find_item(
    conn: psycopg.Connection[Any], item_class: str, serial: str, base_url: str
) -> PublicItem | None:
    """The public record of a known item or asset (commissioned or seen in an event), or
    None."""
    cursor = conn.cursor(row_factory=dict_row)
    row = cursor.execute(_QUERIES["item"], {"item_class": item_class, "serial": serial}).fetchone()
    if row is None:
        return None
    return PublicItem(
        **{**row, **key_fields(item_class, serial)},
        serial=serial,
        uri=build_uri(base_url, item_class, serial),
        currency=CURRENCY,
        how_to_return=how_to_return(row["reusable"], row["deposit"]),
    )


def _accept_weights(accept: str) -> dict[str, float]:
    """Media range → quality (0 to 1) of an Accept header; a malformed q counts as 0."""
    weights: dict[str, float] = {}
    for media_range in accept.split(",", MAX_ACCEPT_RANGES)[:MAX_ACCEPT_RANGES]:
        media_type, _, params = media_range.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not 0.0 <= quality <= 1.0:  # also NaN
            quality = 0.0
        key = media_type.strip().lower()
        weights[key] = max(quality, weights.get(key, 0.0))
    return weights


def negotiate(accept: str, link_type: str | None) -> Representation:
    """The representation to answer with: a known `linkType` decides, then the Accept
    header. Whoever does not prefer JSON (browsers, `*/*`, no header) gets the page."""
    if link_type is not None and link_type in LINK_TYPES:
        return LINK_TYPES[link_type]
    weights = _accept_weights(accept)
    linkset = weights.get(LINKSET_JSON, 0.0)
    as_json = max(weights.get("application/json", 0.0), weights.get(PROBLEM_JSON, 0.0))
    page = max(weights.get("text/html", 0.0), weights.get("application/xhtml+xml", 0.0))
    if linkset > 0 and linkset >= max(as_json, page):
        return Representation.LINKSET
    if as_json > page:
        return Representation.JSON
    return Representation.HTML


def digital_link_key(request: Request, *, grai: bool = False) -> tuple[str, str | None]:
    """(item class, serial or None) of the request's Digital Link path, keyed by a GRAI
    when `grai`, else by a GTIN; 400 when it is not a valid one (a GS1-Conformant resolver
    reports syntax errors, such as a wrong check digit, with 400, and keeps 404 for valid
    keys it does not know)."""
    # The raw path, not the decoded one: decoding has already turned a serial's %2F into a
    # path separator (and the test client decodes twice). parse_code decodes values once.
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else quote(request.scope["path"])
    try:
        item_class, serial = parse_code(f"{request.url.scheme}://{request.url.netloc}{path}")
    except (InvalidCode, InvalidGtin, InvalidSerial, InvalidGrai) as exc:
        raise Problem(400, "invalid-digital-link", str(exc)) from None
    # The key is the path's last primary key: a path such as /01/…/21/x/8003/… names a GRAI.
    if is_grai_class(item_class) != grai:
        wanted = "GRAI (AI 8003)" if grai else "GTIN (AI 01)"
        raise Problem(400, "invalid-digital-link", f"{path}: its key is not a {wanted}")
    return item_class, serial


def linkset(record: PublicProduct) -> dict[str, Any]:
    """The RFC 9264 linkset of a record's Digital Link URI, in the GS1-Conformant resolver
    form: relation types as GS1 vocabulary URIs, each target with title, type, hreflang."""
    page = {
        "href": record.uri,
        "title": f"{record.product}: packaging and how to return it",
        "type": "text/html",
        "hreflang": [LANGUAGE],
    }
    context: dict[str, Any] = {
        "anchor": record.uri,
        f"{GS1_VOC}defaultLink": [page],
        f"{GS1_VOC}pip": [page],
    }
    if isinstance(record, PublicItem):
        context[f"{GS1_VOC}traceability"] = [
            {
                "href": f"{record.uri}?linkType=gs1:traceability",
                "title": "This package: trips so far",
                "type": "application/json",
                "hreflang": [LANGUAGE],
            }
        ]
    return {"linkset": [context]}


_PAGE = Template("""<!doctype html>
<html lang="$lang">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body{font-family:system-ui,sans-serif;line-height:1.5;color:#222;
     max-width:32rem;margin:0 auto;padding:1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
dt{color:#666}
dd{margin:0}
.return{background:#e8f5e9;border-radius:.5rem;padding:.75rem 1rem}
small{color:#666}
</style>
</head>
<body>
<main>
$body
</main>
</body>
</html>
""")


def _page(title: str, body: str) -> str:
    """A whole page around `body` (HTML, already escaped); `title` is escaped here."""
    return _PAGE.substitute(lang=LANGUAGE, title=html.escape(title), body=body)


def _record_page(heading: str, rows: list[tuple[str, str]], advice: str, note: str) -> str:
    cells = "\n".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
    return _page(
        heading,
        f"<h1>{html.escape(heading)}</h1>\n<dl>\n{cells}\n</dl>\n"
        f'<p class="return">{html.escape(advice)}</p>\n'
        f"<p><small>{html.escape(note)}</small></p>",
    )


def _deposit_text(deposit: int) -> str:
    return format_amount(deposit) if deposit else "None"


def product_page(product: PublicProduct) -> str:
    rows = [
        ("Packaging", product.packaging),
        ("Material", product.material),
        ("Deposit", _deposit_text(product.deposit)),
    ]
    if product.target_trips is not None:
        rows.append(("Made for", f"{product.target_trips} trips"))
    return _record_page(product.product, rows, product.how_to_return, _key_note(product))


def _key_note(record: PublicProduct) -> str:
    if record.grai is not None:
        return f"GRAI {record.grai}"
    if isinstance(record, PublicItem):
        return f"GTIN {record.gtin} · serial {record.serial}"
    return f"GTIN {record.gtin}"


def item_page(item: PublicItem) -> str:
    rows = [
        ("Packaging", item.packaging),
        ("Material", item.material),
        ("Deposit", _deposit_text(item.deposit)),
    ]
    if item.trips is not None:
        made_for = f" of {item.target_trips}" if item.target_trips is not None else ""
        rows.append(("Trips so far", f"{item.trips}{made_for}"))
    return _record_page(item.product, rows, item.how_to_return, _key_note(item))


def error_page(status: int, detail: str) -> str:
    heading = HTTPStatus(status).phrase
    hint = (
        "This code is not known here."
        if status == 404
        else "This is not a valid product code: was it scanned completely?"
    )
    return _page(
        heading,
        f"<h1>{html.escape(heading)}</h1>\n<p>{html.escape(hint)}</p>\n"
        f"<p><small>{html.escape(detail)}</small></p>",
    )


def answer(record: PublicProduct, wanted: Representation, page: str) -> Response:
    """`record` in the wanted representation; `page` is its HTML."""
    headers = {
        **PUBLIC_HEADERS,
        "Link": f'<{record.uri}?linkType=linkset>; rel="linkset"; type="{LINKSET_JSON}"',
    }
    if wanted is Representation.LINKSET:
        return JSONResponse(linkset(record), media_type=LINKSET_JSON, headers=headers)
    if wanted is Representation.JSON:
        return JSONResponse(record.model_dump(mode="json"), headers=headers)
    return HTMLResponse(page, headers={**headers, **HTML_HEADERS})


def error_answer(request: Request, problem: Problem, wanted: Representation) -> Response:
    """An HTML error page for browsers, problem+json for everyone else."""
    if wanted is Representation.HTML:
        return HTMLResponse(
            error_page(problem.status, problem.detail),
            status_code=problem.status,
            headers={**PUBLIC_HEADERS, **HTML_HEADERS},
        )
    return problem_response(
        problem.status, problem.slug, problem.detail, request.url.path, headers=PUBLIC_HEADERS
    )


def _error_documented(meaning: str) -> dict[str, Any]:
    return {
        "description": meaning,
        "content": {
            PROBLEM_JSON: {"schema": ProblemDetails.model_json_schema()},
            "text/html": {"schema": {"type": "string"}},
        },
    }


_LINK_TARGET_SCHEMA = {
    "type": "object",
    "required": ["href"],
    "properties": {
        "href": {"type": "string"},
        "title": {"type": "string"},
        "type": {"type": "string"},
        "hreflang": {"type": "array", "items": {"type": "string"}},
    },
}
LINKSET_SCHEMA = {
    "type": "object",
    "required": ["linkset"],
    "properties": {
        "linkset": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["anchor"],
                "properties": {"anchor": {"type": "string"}},
                "additionalProperties": {"type": "array", "items": _LINK_TARGET_SCHEMA},
            },
        }
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "HTML for browsers; the public record for `Accept: application/json`; an RFC 9264 "
            f"linkset for `?linkType=linkset` (or `all`) or `Accept: {LINKSET_JSON}`"
        ),
        "content": {
            "text/html": {"schema": {"type": "string"}},
            LINKSET_JSON: {"schema": LINKSET_SCHEMA},
        },
    },
    400: _error_documented(
        "Not a valid GS1 Digital Link: a GTIN or GRAI with a wrong check digit, length or "
        "a non-digit, or a serial outside GS1 character set 82 or too long (20; a GRAI's 16)"
    ),
    404: _error_documented("No such registered product, or no such item of it"),
}

Config = Annotated[Settings, Depends(settings)]
GtinPath = Annotated[str, Path(description="GTIN-8, -12, -13 or -14")]
LinkType = Annotated[
    str | None,
    Query(
        alias="linkType",
        description="`linkset` or `all`: the linkset; `gs1:pip`: the page; "
        "`gs1:traceability`: the JSON record (items); other values are ignored",
    ),
]


@router.get(
    "/01/{gtin}/21/{serial:path}",
    response_model=PublicItem,
    responses=RESPONSES,
    summary="Resolve an item's Digital Link (the QR code's address)",
)
def resolve_item(
    request: Request,
    conn: Conn,
    config: Config,
    gtin: GtinPath,
    serial: Annotated[str, Path(description="AI (21), percent-encoded as GS1 requires")],
    link_type: LinkType = None,
) -> Response:
    """A serialised package: product, packaging, material, deposit, trips so far and how
    to return it. Public: no key; never a site or device."""
    wanted = negotiate(request.headers.get("accept", ""), link_type)
    try:
        gtin14, serial_value = digital_link_key(request)
        if serial_value is None:  # unreachable through this route; kept for the type
            raise Problem(400, "invalid-digital-link", "no serial (AI 21) in the path")
        item = find_item(conn, gtin14, serial_value, config.public_base_url)
        if item is None:
            raise Problem(404, "not-found", f"no item {gtin14}/{serial_value}")
    except Problem as problem:
        return error_answer(request, problem, wanted)
    return answer(item, wanted, item_page(item))


@router.get(
    "/01/{gtin}",
    response_model=PublicProduct,
    responses=RESPONSES,
    summary="Resolve a product's Digital Link",
)
def resolve_product(
    request: Request,
    conn: Conn,
    config: Config,
    gtin: GtinPath,
    link_type: LinkType = None,
) -> Response:
    """A registered product: packaging, material, deposit and how to return it."""
    wanted = negotiate(request.headers.get("accept", ""), link_type)
    try:
        gtin14, _ = digital_link_key(request)
        product = find_product(conn, gtin14, config.public_base_url)
        if product is None:
            raise Problem(404, "not-found", f"no product {gtin14}")
    except Problem as problem:
        return error_answer(request, problem, wanted)
    return answer(product, wanted, product_page(product))


@router.get(
    f"/{AI_GRAI}/{{grai:path}}",
    response_model=PublicItem,
    responses=RESPONSES,
    summary="Resolve a returnable asset's Digital Link (GRAI, AI 8003)",
)
def resolve_asset(
    request: Request,
    conn: Conn,
    config: Config,
    grai: Annotated[
        str,
        Path(
            description="The GRAI: a 14-digit asset type and an optional serial of up to 16 "
            "characters, percent-encoded as GS1 requires"
        ),
    ],
    link_type: LinkType = None,
) -> Response:
    """A returnable asset (crate, pallet) by its GRAI: like an item, with its trips so
    far; a GRAI without a serial answers for the asset type, like a product."""
    wanted = negotiate(request.headers.get("accept", ""), link_type)
    try:
        item_class, serial = digital_link_key(request, grai=True)
        record: PublicProduct | None
        if serial is None:
            record = find_product(conn, item_class, config.public_base_url)
        else:
            record = find_item(conn, item_class, serial, config.public_base_url)
        if record is None:
            raise Problem(404, "not-found", f"no asset {key_fields(item_class, serial)['grai']}")
    except Problem as problem:
        return error_answer(request, problem, wanted)
    page = item_page(record) if isinstance(record, PublicItem) else product_page(record)
    return answer(record, wanted, page)
