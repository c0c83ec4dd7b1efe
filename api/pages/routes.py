"""The pages' endpoints: thin, as the JSON ones are. What they show comes from the
domains' functions (api.stats, api.registry, api.items, api.labels, api.dead_letters), the
same the JSON endpoints call; the pages run no SQL of their own."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.dead_letters import DeadLetterFilter, list_dead_letters, replay
from api.dependencies import MAX_PAGE, Conn, login_caller, parse_item_class, settings
from api.items import items_with_serial
from api.key_throttle import KeyThrottle
from api.labels import (
    LabelFormat,
    RenderBusy,
    UnknownProduct,
    batch_items,
    busy,
    commission,
    labels_for,
    render,
)
from api.pages import charts, material_pages
from api.pages.session import (
    COOKIE,
    COOKIE_MAX_AGE_S,
    BrandPage,
    LoginRequired,
    OperatorPage,
)
from api.pages.times import local_time
from api.problems import Problem
from api.registry import brand_products, device_statuses, packaging_types
from api.stats import (
    Bucket,
    SlowWindow,
    duplicate_returns,
    material_rows,
    rejects_by_reason,
    return_rate_rows,
    reuse,
    targets,
)
from api.time_window import window
from schemas.api_keys import KeyRefused, Principal, Role
from schemas.grai import key_fields
from schemas.page_sessions import end_session, start_session
from schemas.settings import Settings

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
TEMPLATES.env.globals["figure"] = material_pages.figure
TEMPLATES.env.filters["local_time"] = local_time
router = APIRouter(include_in_schema=False)
Config = Annotated[Settings, Depends(settings)]

# Label stock layouts offered by the portal's form: (columns, rows) per A4 sheet.
LAYOUTS = {"3x8": (3, 8), "4x10": (4, 10), "2x5": (2, 5)}
# The tables a CSV can be had of, with their columns (a CSV has its header when empty too).
COLUMNS = {
    "return-rates": ["bucket_start", "packaging_type", "sold", "returned", "rejected",
                     "return_rate", "sold_kg", "returned_kg"],
    "reuse": ["packaging_type", "items", "trips", "mean_trips", "p50_trips", "p90_trips",
              "max_trips", "target_trips", "reached_target", "mean_trip_days",
              "median_trip_days", "lost", "loss_rate"],
    "devices": ["id", "site", "kind", "last_seen", "online", "events_today", "seq_gaps"],
    "dead-letters": ["id", "received_at", "topic", "device_id", "reason", "detail",
                     "batch_index", "payload_preview", "payload_encoding", "payload_size",
                     "payload_sha256", "payload_truncated", "replayed_at"],
    "duplicates": ["event_id", "gtin", "grai", "serial", "ts", "previous_ts", "device_id",
                   "site_id"],
    "rejects": ["reason", "packaging_type", "rejected"],
    "products": ["gtin", "grai", "name", "packaging_type", "packaging_name", "material",
                 "reusable", "deposit"],
    "materials": material_pages.columns(material_pages.FLOW_COLUMNS),
    "targets": material_pages.TARGET_COLUMNS,
}  # fmt: skip
# A brand's material CSV: its placed-on-market side, without the scheme's flow columns.
BRAND_MATERIAL_COLUMNS = material_pages.columns(material_pages.PLACED_COLUMNS)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection):
# such a text cell gets a leading apostrophe, which spreadsheets show as text. Numbers
# are written as numbers (a negative one is no formula).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _period(default: Bucket) -> Any:
    """A dependency reading the period a page shows from its query (`from`, `to`,
    `bucket`, `tz`), as the statistics endpoints do; `default` is the page's bucket."""

    def read(
        config: Config,
        bucket: Bucket = default,
        tz: Annotated[str | None, Query(max_length=64)] = None,
        from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        to: Annotated[str | None, Query(max_length=40)] = None,
    ) -> dict[str, Any]:
        # The period form sends its empty fields as empty values: those are not given.
        return _view(config, bucket, tz or None, from_ or None, to or None)

    return Depends(read)


DailyView = Annotated[dict[str, Any], _period(Bucket.DAY)]
MonthlyView = Annotated[dict[str, Any], _period(Bucket.MONTH)]


def login_required_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(exc.location, status_code=303)


# -- login --------------------------------------------------------------------------------


# What the login form says of the session it starts.
_LOGIN = {"login_hours": COOKIE_MAX_AGE_S // 3600}


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "", reason: str = "") -> Response:
    return TEMPLATES.TemplateResponse(
        request, "login.html", {"next": _local(next), "reason": reason, "error": None, **_LOGIN}
    )


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    conn: Conn,
    key: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    throttle: KeyThrottle = request.app.state.key_throttle
    client = request.client.host if request.client else "unknown"
    throttle.check(client)  # 429 while this client is over its unknown keys
    why = ""
    try:
        caller: Principal | None = login_caller(conn, key.strip())
    except KeyRefused as refused:
        throttle.failed(client)
        caller, why = None, str(refused)
    if caller is None or caller.role not in (Role.OPERATOR, Role.BRAND, Role.ADMIN):
        # "Unknown or revoked API key.", "API key expired at 2026-…Z." (schemas.api_keys)
        error = (
            f"{why[0].upper()}{why[1:]}."
            if caller is None
            else f"A {caller.role.value} key cannot use these pages."
        )
        return TEMPLATES.TemplateResponse(
            request,
            "login.html",
            {"next": _local(next), "reason": "", "error": error, **_LOGIN},
            status_code=401,
        )
    home = "/portal" if caller.role is Role.BRAND else "/dashboard"
    session_id = start_session(conn, caller.key_id, COOKIE_MAX_AGE_S)
    response = RedirectResponse(_local(next) or home, status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request, conn: Conn) -> Response:
    """End the session in the database, not only in this browser: a copy of the cookie
    opens nothing afterwards."""
    if session_id := request.cookies.get(COOKIE):
        end_session(conn, session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
def home() -> Response:
    return RedirectResponse("/dashboard", status_code=303)


# -- operator dashboard -------------------------------------------------------------------


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(
    request: Request,
    conn: Conn,
    caller: OperatorPage,
    view: DailyView,
    replayed: int | None = None,
) -> Response:
    rates, slow = _unless_slow(request, lambda: _return_rates(conn, view, brand=None))
    totals = _totals(rates)
    context = {
        "caller": caller,
        "view": view,
        "slow": slow,
        "buckets": [b.value for b in Bucket if b is not Bucket.TOTAL],
        "rates": rates,
        "totals": totals,
        "rate_chart": _rate_chart(rates, _colours(conn)),
        "over_full": _over_full(rates, totals),
        "rejects": _rejects(conn, view, brand=None),
        "devices": _devices(conn),
        "dead_letters": _dead_letters(conn),
        "replayed": replayed,
        # Not again every 30 s a period that ran into the time limit: each try holds a
        # connection for as long as the limit.
        "refresh_s": None if slow else 30,
    }
    return TEMPLATES.TemplateResponse(request, "dashboard.html", context)


@router.get("/dashboard/reuse", response_class=HTMLResponse)
def dashboard_reuse(request: Request, conn: Conn, caller: OperatorPage, config: Config) -> Response:
    """Reuse and duplicate returns: on a page of their own, without the dashboard's
    auto-refresh, because they read the per-item aggregates (a row per serialised item and
    trip), not the small day rollups the dashboard reloads every 30 s."""
    return _reuse_page(request, conn, caller, config, brand=None, csv="/dashboard")


@router.get("/portal/reuse", response_class=HTMLResponse)
def portal_reuse(request: Request, conn: Conn, caller: BrandPage, config: Config) -> Response:
    return _reuse_page(request, conn, caller, config, brand=_brand_of(caller), csv="/portal")


def _reuse_page(
    request: Request, conn: psycopg.Connection[Any], caller: Principal, config: Settings, *,
    brand: str | None, csv: str,
) -> Response:  # fmt: skip
    """The reuse page has no period to choose: its times are in LOOPTRACK_TIMEZONE."""
    reuse_rows = reuse(conn, packaging_type=None, brand=brand)
    context = {
        "caller": caller,
        "brand": brand,
        "csv": csv,
        "tz": config.timezone,
        "reuse": reuse_rows,
        "histograms": _histograms(reuse_rows, _colours(conn)),
        "duplicates": _duplicates(conn, brand=brand),
    }
    return TEMPLATES.TemplateResponse(request, "reuse.html", context)


@router.get("/dashboard/materials", response_class=HTMLResponse)
def dashboard_materials(
    request: Request, conn: Conn, caller: OperatorPage, view: MonthlyView
) -> Response:
    """Material flows per material (placed on market → collected → sorted by outcome) and
    the circularity targets: one material_rows and one targets call, both from rollups."""
    rows, slow = _unless_slow(request, lambda: _material_rows(conn, view, brand=None))
    material_totals = material_pages.totals(rows)
    context = {
        "caller": caller,
        "view": view,
        "slow": slow,
        "buckets": [b.value for b in Bucket],
        "csv_query": _csv_query(request, view),
        "columns": material_pages.FLOW_COLUMNS,
        "table": material_pages.table(rows, material_pages.FLOW_COLUMNS, view["bucket"]),
        "totals": material_totals,
        "flows": [(t, material_pages.flow_chart(t)) for t in material_totals],
        "targets": material_pages.target_rows(targets(conn)),
    }
    return TEMPLATES.TemplateResponse(request, "materials.html", context)


@router.get("/portal/materials", response_class=HTMLResponse)
def portal_materials(
    request: Request, conn: Conn, caller: BrandPage, view: MonthlyView
) -> Response:
    """A brand's packaging placed on the market per material, with its recycled, renewable
    and fibre-based content; never the scheme's collected and sorted figures."""
    brand = _brand_of(caller)
    rows, slow = _unless_slow(request, lambda: _material_rows(conn, view, brand=brand))
    material_totals = material_pages.totals(rows)
    context = {
        "caller": caller,
        "brand": brand,
        "view": view,
        "slow": slow,
        "buckets": [b.value for b in Bucket],
        "csv_query": _csv_query(request, view),
        "columns": material_pages.PLACED_COLUMNS,
        "table": material_pages.table(rows, material_pages.PLACED_COLUMNS, view["bucket"]),
        "totals": material_totals,
        "chart": material_pages.content_chart(material_totals) if material_totals else "",
    }
    return TEMPLATES.TemplateResponse(request, "portal_materials.html", context)


@router.post("/dashboard/dead-letters/replay")
def replay_dead_letters(
    request: Request,
    conn: Conn,
    _: OperatorPage,
    ids: Annotated[list[int] | None, Form()] = None,
) -> Response:
    chosen = ids or []
    sent = (
        replay(conn, request.app.state.publisher, DeadLetterFilter(ids=chosen), limit=len(chosen))
        if chosen
        else []
    )
    return RedirectResponse(f"/dashboard?replayed={len(sent)}#dead-letters", status_code=303)


# -- brand portal -------------------------------------------------------------------------


@router.get("/portal", response_class=HTMLResponse)
def portal(
    request: Request,
    conn: Conn,
    caller: BrandPage,
    config: Config,
    view: MonthlyView,
    serial: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    brand = _brand_of(caller)
    rates, slow = _unless_slow(request, lambda: _return_rates(conn, view, brand=brand))
    totals = _totals(rates)
    context = {
        "caller": caller,
        "brand": brand,
        "view": view,
        "slow": slow,
        "buckets": [b.value for b in Bucket if b is not Bucket.TOTAL],
        "products": _products(conn, brand),
        "rates": rates,
        "totals": totals,
        "rate_chart": _rate_chart(rates, _colours(conn)),
        "over_full": _over_full(rates, totals),
        "rejects": _rejects(conn, view, brand=brand),
        "layouts": list(LAYOUTS),
        "max_count": config.labels_max_count,
        "serial": serial,
        # The brand's items with this serial: one per GTIN it was commissioned under.
        "found": items_with_serial(conn, serial, brand=brand) if serial else None,
    }
    return TEMPLATES.TemplateResponse(request, "portal.html", context)


@router.post("/portal/labels")
def print_labels(
    conn: Conn,
    caller: BrandPage,
    config: Config,
    product: Annotated[str, Form(max_length=18, description="a GTIN, or '8003' + asset type")],
    count: Annotated[int, Form(ge=1)],
    layout: Annotated[str, Form()] = "3x8",
) -> Response:
    """Commission `count` items (or GRAI assets) and send their label sheets as a PDF
    download."""
    item_class = parse_item_class(product)
    if count > config.labels_max_count:
        raise Problem(422, "too-many-labels", f"at most {config.labels_max_count} per batch")
    if layout not in LAYOUTS:
        raise Problem(422, "unknown-layout", f"layout must be one of {', '.join(LAYOUTS)}")
    brand = _brand_of(caller)
    try:
        batch = commission(
            conn, item_class, count, "pdf", created_by=str(caller.key_id), brand=brand
        )
    except UnknownProduct:
        key = key_fields(item_class, None)
        unknown = f"product {key['gtin']}" if key["grai"] is None else f"asset type {key['grai']}"
        raise Problem(404, "not-found", f"no {unknown} of yours") from None
    found = batch_items(conn, batch.id, brand)
    assert found is not None  # committed in this transaction a moment ago
    stored, named = found
    labels = labels_for(stored.item_class, stored.serials, named, config.public_base_url)
    try:
        pdf = render(labels, LabelFormat.PDF, grid=LAYOUTS[layout])
    except RenderBusy as exc:
        raise busy(exc) from None
    name = f"labels-{item_class}-{batch.id}.pdf"
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- CSV ----------------------------------------------------------------------------------


@router.get("/dashboard/{table}.csv")
def dashboard_csv(
    table: str,
    conn: Conn,
    _: OperatorPage,
    view: DailyView,
) -> Response:
    return _csv_table(conn, table, None, view)


@router.get("/portal/{table}.csv")
def portal_csv(
    table: str,
    conn: Conn,
    caller: BrandPage,
    view: MonthlyView,
) -> Response:
    if table not in ("return-rates", "rejects", "reuse", "products", "duplicates", "materials"):
        raise Problem(404, "not-found", f"no table {table!r} in the portal")
    return _csv_table(conn, table, _brand_of(caller), view)


def _csv_table(
    conn: psycopg.Connection[Any], table: str, brand: str | None, view: dict[str, Any]
) -> Response:
    """The rows a page shows, as CSV (one header line, then the values as shown)."""
    rows: list[dict[str, Any]]
    columns = COLUMNS.get(table, [])
    if table == "return-rates":
        rows = _return_rates(conn, view, brand=brand)
    elif table == "rejects":
        rows = _rejects(conn, view, brand=brand)["rows"]
    elif table == "reuse":
        rows = reuse(conn, packaging_type=None, brand=brand)
    elif table == "devices" and brand is None:
        rows = _devices(conn)
    elif table == "dead-letters" and brand is None:
        rows = _dead_letters(conn)
    elif table == "duplicates":
        rows = _duplicates(conn, brand=brand)
    elif table == "products" and brand is not None:
        rows = _products(conn, brand)
    elif table == "materials":
        rows = material_pages.csv_rows(_material_rows(conn, view, brand=brand))
        columns = COLUMNS[table] if brand is None else BRAND_MATERIAL_COLUMNS
    elif table == "targets" and brand is None:
        rows = material_pages.target_rows(targets(conn))
    else:
        raise Problem(404, "not-found", f"no table {table!r}; one of {', '.join(COLUMNS)}")
    return Response(
        _to_csv(rows, columns),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{table}.csv"'},
    )


def _to_csv(rows: Iterable[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    # Lines end in CRLF (RFC 4180): the writer then quotes a cell holding a CR as well as
    # one holding an LF; with LF alone a CR in a cell (a device's payload) split its row.
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


# -- what the pages show ------------------------------------------------------------------


def _view(
    config: Settings, bucket: Bucket, tz: str | None, start: str | None, end: str | None
) -> dict[str, Any]:
    bounds = window(start, end, tz or config.timezone)
    return {
        "timeout_ms": config.stats_timeout_ms,
        "bucket": bucket,
        "tz": bounds.tz.key,
        "bounds": bounds,
        "from": start or "",
        "to": end or "",
        "zones": sorted({bounds.tz.key, config.timezone, "UTC"}),
    }


def _return_rates(
    conn: psycopg.Connection[Any], view: dict[str, Any], *, brand: str | None
) -> list[dict[str, Any]]:
    return return_rate_rows(
        conn, view["bounds"], view["bucket"], packaging_type=None, brand=brand, site_id=None,
        timeout_ms=view["timeout_ms"],
    )  # fmt: skip


def _material_rows(
    conn: psycopg.Connection[Any], view: dict[str, Any], *, brand: str | None
) -> list[dict[str, Any]]:
    """Material rows of the page's period; a brand's are its placed-on-market side only."""
    return material_rows(
        conn, view["bounds"], view["bucket"], brand=brand, packaging_type=None,
        placed_only=brand is not None, timeout_ms=view["timeout_ms"],
    )  # fmt: skip


def _unless_slow(
    request: Request, read: Callable[[], list[dict[str, Any]]]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """`read()`, or, when its window takes longer than the time limit, no rows and what
    the page says about it: the reason and a link to each window answered fast (the same
    page and bucket, the window widened to it). The rest of the page is still shown."""
    try:
        return read(), None
    except SlowWindow as refused:
        links = []
        for fast in refused.fast_windows:
            query = fast["query"]
            if fast["rollup"] == "day":
                last = date.fromisoformat(query["to"]) - timedelta(days=1)
                label = f"Whole days in {query['tz']}: {query['from']} to {last.isoformat()}"
            else:
                label = f"Whole hours in {query['tz']}: {query['from']} to {query['to']}"
            links.append((label, "?" + urlencode({**request.query_params, **query})))
        return [], {"detail": refused.detail, "links": links}


def _csv_query(request: Request, view: dict[str, Any]) -> str:
    """The page's query for its CSV links, with the bucket named: the CSV endpoints'
    default bucket need not be the page's."""
    return urlencode({**request.query_params, "bucket": view["bucket"].value})


def _rejects(
    conn: psycopg.Connection[Any], view: dict[str, Any], *, brand: str | None
) -> dict[str, Any]:
    """Rejects by reason in the page's window (rejects_by_reason: `zone` says when they
    are counted over whole days of another zone)."""
    rejects = rejects_by_reason(conn, view["bounds"], brand=brand)
    rows = [
        {**r, "packaging_type": r["packaging_type"] or "(unregistered)"} for r in rejects["rows"]
    ]
    return {**rejects, "rows": rows}


def _totals(rates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per packaging type over the whole window: sold vs returned, count and kg."""
    totals: dict[str, dict[str, Any]] = {}
    for row in rates:
        name = row["packaging_type"] or "(unregistered)"
        t = totals.setdefault(
            name,
            {"packaging_type": name, "sold": 0, "returned": 0, "rejected": 0,
             "sold_kg": 0.0, "returned_kg": 0.0},
        )  # fmt: skip
        for k in ("sold", "returned", "rejected"):
            t[k] += row[k]
        for k in ("sold_kg", "returned_kg"):
            t[k] += row[k] or 0.0
    for t in totals.values():
        t["return_rate"] = t["returned"] / t["sold"] if t["sold"] else None
    return [totals[k] for k in sorted(totals)]


def _over_full(rates: list[dict[str, Any]], totals: list[dict[str, Any]]) -> bool:
    """Whether a return rate the page shows (a bucket's in the chart, or a total's) is
    above 100 %, which the page then explains."""
    return any((row["return_rate"] or 0) > 1 for row in [*rates, *totals])


def _colours(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Each registered packaging type's colour (charts.packaging_colours), the same on
    every page whichever types it shows."""
    return charts.packaging_colours(t["id"] for t in packaging_types(conn, limit=MAX_PAGE))


def _rate_chart(rates: list[dict[str, Any]], colours: dict[str, str]) -> str:
    labels = sorted({r["bucket_start"][:10] for r in rates})
    index = {label: i for i, label in enumerate(labels)}
    by_type: dict[str, list[float | None]] = {}
    for r in rates:
        points = by_type.setdefault(r["packaging_type"] or "(unregistered)", [None] * len(labels))
        points[index[r["bucket_start"][:10]]] = r["return_rate"]
    series = [
        charts.Series(name, points, colours.get(name, charts.NO_TYPE_COLOUR))
        for name, points in sorted(by_type.items())
    ]
    return charts.line_chart(
        "Return rate per packaging type", labels, series, y_title="Return rate"
    )


def _histograms(reuse_rows: list[dict[str, Any]], colours: dict[str, str]) -> dict[str, str]:
    return {
        r["packaging_type"]: charts.bar_chart(
            f"{r['packaging_type']}: items by number of trips",
            [str(bar["trips"]) for bar in r["histogram"]],
            [bar["items"] for bar in r["histogram"]],
            x_title="Trips",
            y_title="Items",
            colour=colours.get(r["packaging_type"], charts.NO_TYPE_COLOUR),
        )
        for r in reuse_rows
    }


def _devices(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return device_statuses(conn, site_id=None, after="", limit=1000)


def _dead_letters(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """The newest pending dead letters, each with a preview cut in SQL (never the payload)."""
    return list_dead_letters(conn, DeadLetterFilter(), pending=True, before=None, limit=100)


def _duplicates(conn: psycopg.Connection[Any], *, brand: str | None) -> list[dict[str, Any]]:
    """The last 30 days' duplicate returns (a brand's without devices and sites)."""
    end = datetime.now(UTC)
    rows = duplicate_returns(conn, end - timedelta(days=30), end, brand=brand, limit=100)
    return [{name: row[name] for name in COLUMNS["duplicates"]} for row in rows]


def _products(conn: psycopg.Connection[Any], brand: str) -> list[dict[str, Any]]:
    """The brand's products and GRAI asset types; `item_class` is what the label form
    sends, `gtin` or `grai` what is shown."""
    rows = brand_products(conn, brand)
    return [{**row, **key_fields(row["item_class"], None)} for row in rows]


def _brand_of(caller: Principal) -> str:
    if caller.brand is None:  # admin keys have no brand
        raise LoginRequired("/portal", "The portal needs a brand key.")
    return caller.brand


def _local(path: str) -> str:
    """Only a path on this site may be a redirect target (no open redirect)."""
    return path if path.startswith("/") and not path.startswith("//") else ""
